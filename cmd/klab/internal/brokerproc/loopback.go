package brokerproc

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/client"
	"klab.dev/klab/broker/membership"
)

// Loopback is a Cluster of brokers on free loopback ports, each broker's
// output in <dir>/broker-N.log.
type Loopback struct {
	*Cluster
	Addrs  []string // Kafka listeners, broker id's at id-1
	Gossip []string // gossip addresses, broker id's at id-1
}

// StartLoopback starts n brokers, each a process of the klab binary at
// bin, on free loopback ports, with their data under dir (broker N's in
// dir/broker-N). It does not wait for them to form a cluster:
// WaitBrokers does.
func StartLoopback(bin, dir string, n int) (*Loopback, error) {
	addrs, err := membership.FreeLoopbackAddrs(2 * n)
	if err != nil {
		return nil, err
	}
	c := &Loopback{Addrs: addrs[:n], Gossip: addrs[n:]}
	args := make([][]string, n)
	for i := range n {
		id := strconv.Itoa(i + 1)
		args[i] = []string{"broker", "--id", id, "--listen", c.Addrs[i], "--gossip", c.Gossip[i],
			"--seeds", strings.Join(c.Gossip, ","), "--dir", filepath.Join(dir, "broker-"+id)}
	}
	c.Cluster = New(bin, args)
	c.LogDir = dir
	for i := range n {
		if _, err := c.Start(int32(i + 1)); err != nil {
			c.Stop()
			return nil, err
		}
	}
	return c, nil
}

// Stop stops every broker cleanly, or kills it after 10 s.
func (c *Loopback) Stop() { c.StopAll(10 * time.Second) }

// WaitBrokers waits until all the brokers are in the cluster and it has an
// active controller.
func (c *Loopback) WaitBrokers(ctx context.Context) error {
	n := len(c.Addrs)
	deadline := time.Now().Add(60 * time.Second)
	last := "no answer"
	for time.Now().Before(deadline) {
		md, err := FreshMetadata(ctx, c.Addrs)
		if err == nil && len(md.Brokers) == n && md.ControllerID >= 0 {
			return nil
		}
		if err == nil {
			last = fmt.Sprintf("%d brokers, controller %d", len(md.Brokers), md.ControllerID)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("the %d brokers did not form a cluster within a minute: %s", n, last)
}

// WaitFullISR waits until partition 0 of topic has a leader and every
// broker of the cluster in its ISR, and returns the leader.
func (c *Loopback) WaitFullISR(ctx context.Context, topic string) (leader int32, err error) {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		md, err := FreshMetadata(ctx, c.Addrs, topic)
		if err == nil && len(md.Topics) == 1 && len(md.Topics[0].Partitions) > 0 {
			if p := md.Topics[0].Partitions[0]; p.Leader >= 0 && len(p.ISR) == len(c.Addrs) && p.ErrorCode == 0 {
				return p.Leader, nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return 0, fmt.Errorf("partition %s-0 did not get %d in-sync replicas within a minute", topic, len(c.Addrs))
}

// FreshMetadata asks the first broker of addrs that answers for the
// cluster's metadata, on a new connection: franz-go's client keeps
// metadata answers for a while, and a wait for a change needs today's.
func FreshMetadata(ctx context.Context, addrs []string, topics ...string) (*kmsg.MetadataResponse, error) {
	err := errors.New("no address to ask")
	for _, addr := range addrs {
		var conn *client.Conn
		if conn, err = client.Dial(ctx, addr, "klab-perf"); err != nil {
			continue
		}
		req := kmsg.NewPtrMetadataRequest()
		for _, t := range topics {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = &t
			req.Topics = append(req.Topics, rt)
		}
		var resp kmsg.Response
		resp, err = conn.Request(ctx, req)
		conn.Close()
		if err == nil {
			return resp.(*kmsg.MetadataResponse), nil
		}
	}
	return nil, err
}
