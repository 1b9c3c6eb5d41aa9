package broker

import (
	"context"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ApiVersions: the first request a client sends. The broker lists every API
// it implements with the range of versions it implements, and the client
// picks, for each request, the highest version both know.
//
// Version notes: v3 is flexible; its request carries the client's software
// name and version. A request of a version the broker does not know is
// answered anyway, in version 0, with UNSUPPORTED_VERSION and the list, so
// the client can retry with a version from it.
func init() { register(kmsg.ApiVersions, 0, 3, handleApiVersions) }

func handleApiVersions(b *Broker, _ context.Context, r *request) (kmsg.Response, error) {
	resp := r.body.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = supportedAPIs()
	return resp, nil
}

// apiVersionsUnsupported answers an ApiVersions request of an unknown
// version: in version 0, which every client can read.
func apiVersionsUnsupported(r *request) kmsg.Response {
	r.version = 0
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	resp.ApiKeys = supportedAPIs()
	return resp
}

// supportedAPIs lists exactly the APIs registered, with their versions.
func supportedAPIs() []kmsg.ApiVersionsResponseApiKey {
	keys := make([]kmsg.ApiVersionsResponseApiKey, 0, len(apis))
	for _, a := range apis {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = int16(a.key), a.min, a.max
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].ApiKey < keys[j].ApiKey })
	return keys
}
