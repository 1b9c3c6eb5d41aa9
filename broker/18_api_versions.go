package broker

import (
	"context"
	"regexp"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ApiVersions: the first request a client sends. The broker lists every API
// it implements for clients with the range of versions it implements, and
// the client picks, for each request, the highest version both know. The
// APIs brokers send each other are not listed (registerBetweenBrokers).
//
// Version notes: v3 is flexible; its request carries the client's software
// name and version (KIP-511), which must be a letter or digit, or several
// of letters, digits, '-' and '.' beginning and ending with a letter or
// digit: a v3 request with an empty name or version, or one that breaks
// the rule, is INVALID_REQUEST, with no list, as Kafka answers
// (ApiVersionsRequest.isValid). A request of a version the broker does
// not know is answered anyway, in version 0, with UNSUPPORTED_VERSION and
// the list, so the client can retry with a version from it.
func init() { register(kmsg.ApiVersions, 0, 3, handleApiVersions) }

func handleApiVersions(b *Broker, _ context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.ApiVersionsRequest)
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	if r.version >= 3 && !(softwareNameOrVersion.MatchString(req.ClientSoftwareName) &&
		softwareNameOrVersion.MatchString(req.ClientSoftwareVersion)) {
		// Kafka's answer: the error alone. The list is for choosing the
		// versions of the requests to come, and this client has its
		// request to fix first.
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp, nil
	}
	resp.ApiKeys = supportedAPIs()
	return resp, nil
}

// softwareNameOrVersion is what KIP-511 allows as a client's software name
// or version: Kafka's pattern, anchored, as Java's Matcher.matches is.
var softwareNameOrVersion = regexp.MustCompile(`^[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?$`)

// apiVersionsUnsupported answers an ApiVersions request of an unknown
// version: in version 0, which every client can read.
func apiVersionsUnsupported(r *request) kmsg.Response {
	r.version = 0
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	resp.ApiKeys = supportedAPIs()
	return resp
}

// supportedAPIs lists exactly the APIs registered for clients, with their
// versions.
func supportedAPIs() []kmsg.ApiVersionsResponseApiKey {
	keys := make([]kmsg.ApiVersionsResponseApiKey, 0, len(apis))
	for _, a := range apis {
		if a.betweenBrokers {
			continue
		}
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = int16(a.key), a.min, a.max
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].ApiKey < keys[j].ApiKey })
	return keys
}
