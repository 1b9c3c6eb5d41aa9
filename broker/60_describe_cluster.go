package broker

import (
	"context"
	"math"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeCluster: the cluster's id, its brokers and which one is the
// controller, as the admin client's describeCluster asks.
//
// Version notes: v1 adds the endpoint type (brokers, 1; controllers, 2).
func init() { register(kmsg.DescribeCluster, 0, 1, handleDescribeCluster) }

func handleDescribeCluster(b *Broker, _ context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.DescribeClusterRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = req.EndpointType
	im := b.ctrl.Image()
	resp.ClusterID = im.ClusterID
	resp.ControllerID = b.ctrl.ActiveID()
	for _, mb := range liveBrokers(im, b.members.Alive()) {
		db := kmsg.NewDescribeClusterResponseBroker()
		db.NodeID, db.Host, db.Port, db.Rack = mb.NodeID, mb.Host, mb.Port, mb.Rack
		resp.Brokers = append(resp.Brokers, db)
	}
	// klab has no ACLs: authorized operations are "not asked for" or all.
	resp.ClusterAuthorizedOperations = math.MinInt32
	return resp, nil
}
