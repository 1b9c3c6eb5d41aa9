package broker

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/console"
	"klab.dev/klab/broker/membership"
	"klab.dev/klab/broker/metadata"
	"klab.dev/klab/broker/offsets"
)

// This file serves the broker's web console and /metrics (Config.Console)
// and tells the console what this broker alone knows (consoleSource.Local).

// listenConsole binds the console's address, before the broker joins the
// cluster: its gossip names the address, for the other consoles.
func (b *Broker) listenConsole() error {
	if b.cfg.Console == "" {
		return nil
	}
	ln, err := net.Listen("tcp", b.cfg.Console)
	if err != nil {
		return err
	}
	b.consoleLn = ln
	return nil
}

// ConsoleAddr is where the console answers, host:port; empty if none.
// A console listening on every interface (0.0.0.0) is given the host
// clients reach the broker at, which the other brokers and a browser can
// use.
func (b *Broker) ConsoleAddr() string {
	if b.consoleLn == nil {
		return ""
	}
	tcp, ok := b.consoleLn.Addr().(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return b.consoleLn.Addr().String()
	}
	return net.JoinHostPort(advertisedHost(b.addr), strconv.Itoa(tcp.Port))
}

// serveConsole serves the console on the address listenConsole bound.
func (b *Broker) serveConsole() {
	if b.consoleLn == nil {
		return
	}
	src := consoleSource{b}
	b.consoleClient = &http.Client{Transport: &http.Transport{DialContext: b.dial, MaxIdleConnsPerHost: 2}}
	b.consoleSrv = &http.Server{
		Handler: console.Handler(console.Options{
			Snapshot: func(ctx context.Context) (console.Cluster, error) { return console.Gather(ctx, src, b.consoleClient) },
			Local:    src.Local,
			Metrics:  b.metricsHandler(),
			// The other brokers ask this console where they reach the broker.
			Hosts: []string{advertisedHost(b.addr)},
		}),
		ReadHeaderTimeout: 5 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return b.ctx },
	}
	b.bg.Add(1)
	go func() {
		defer b.bg.Done()
		if err := b.consoleSrv.Serve(b.consoleLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			b.log.Warn("console stopped", "err", err)
		}
	}()
}

// advertisedHost is the host of a host:port address.
func advertisedHost(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}

// closeConsole stops the console; the event streams of open pages end
// with the broker's context.
func (b *Broker) closeConsole() {
	switch {
	case b.consoleSrv != nil:
		b.consoleSrv.Close()
	case b.consoleLn != nil:
		b.consoleLn.Close()
	}
}

// consoleSource lends the console the broker's state.
type consoleSource struct{ b *Broker }

func (s consoleSource) ID() int32                          { return s.b.cfg.NodeID }
func (s consoleSource) Alive() map[int32]membership.Member { return s.b.members.Alive() }
func (s consoleSource) ActiveController() int32            { return s.b.ctrl.ActiveID() }
func (s consoleSource) Metadata() *metadata.Image          { return s.b.ctrl.Image() }

// Local is this broker's replicas, as each one stands, and the groups it
// coordinates.
func (s consoleSource) Local() console.Local {
	b := s.b
	out := console.Local{Broker: b.cfg.NodeID, Replicas: []console.Replica{}, Groups: []console.Group{}}
	b.mu.RLock()
	var held []*partition
	for _, t := range b.topics {
		for _, p := range t.partitions {
			if p != nil {
				held = append(held, p)
			}
		}
	}
	b.mu.RUnlock()
	for _, p := range held {
		p.mu.Lock()
		r := console.Replica{
			Topic: p.topic.name, Partition: p.index,
			Leader: p.state.Leader == p.self, LeaderEpoch: p.state.LeaderEpoch,
			LogStart: p.log.StartOffset(), LogEnd: p.log.EndOffset(), HighWatermark: p.hwm,
		}
		if r.Leader {
			r.Followers = map[int32]int64{}
			for id, f := range p.followers {
				r.Followers[id] = f.leo
			}
		}
		p.mu.Unlock()
		out.Replicas = append(out.Replicas, r)
	}
	listings, _ := b.coord.list()
	for _, l := range listings {
		op, err := b.coord.coordinating(l.GroupID)
		if err != nil {
			continue // moved away since it was listed
		}
		g := console.Group{ID: l.GroupID, State: l.State.String(), ProtocolType: l.ProtocolType, Members: []console.Member{}}
		if live, ok := b.coord.groups.Lookup(l.GroupID); ok {
			d := live.Describe()
			g.State, g.Protocol = d.State.String(), d.Protocol
			for _, m := range d.Members {
				g.Members = append(g.Members, console.Member{ID: m.MemberID, ClientID: m.ClientID, ClientHost: m.ClientHost, Assigned: consumerAssignment(d.ProtocolType, m.Assignment)})
			}
		}
		commits := op.store.Committed(l.GroupID)
		for _, tp := range offsets.Sorted(commits) {
			g.Committed = append(g.Committed, console.Committed{Topic: tp.Topic, Partition: tp.Partition, Offset: commits[tp].Offset})
		}
		out.Groups = append(out.Groups, g)
	}
	return out
}

// consumerAssignment decodes a consumer's assignment (the consumer
// protocol's, KIP-429's layout); nil for other protocols or bad bytes.
func consumerAssignment(protocolType string, assignment []byte) map[string][]int32 {
	if protocolType != "consumer" || len(assignment) == 0 {
		return nil
	}
	var a kmsg.ConsumerMemberAssignment
	if err := a.ReadFrom(assignment); err != nil {
		return nil
	}
	out := map[string][]int32{}
	for _, t := range a.Topics {
		out[t.Topic] = append(out[t.Topic], t.Partitions...)
	}
	return out
}
