// Package membership tells which brokers are alive, with hashicorp/memberlist:
// gossip, and SWIM's failure detection (a broker that stops answering
// probes, direct and through others, is suspected, then declared dead).
//
// This is half of the Consul pattern the cluster follows: gossip says who
// is alive; the metadata log (package metadata) says what is true. The
// controller reads Alive to decide, for instance, that a partition whose
// leader died needs a new one.
package membership

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// Member is what each broker gossips about itself, in its node metadata.
type Member struct {
	ID   int32  `json:"id"`
	Addr string `json:"addr"` // where clients (and peers) reach its Kafka listener
	Rack string `json:"rack,omitempty"`
	// Incarnation is different each time the broker starts: a broker back
	// from a crash is not the one the cluster knew, even with its id.
	Incarnation int64 `json:"incarnation,omitempty"`
	// Console is where the broker's web console answers over HTTP,
	// host:port; empty if it serves none. Each console asks the others'
	// for what only they know (their replicas' log ends, their groups).
	Console string `json:"console,omitempty"`
}

// Config says who this broker is and how to find the others.
type Config struct {
	Self Member
	// Gossip is host:port to gossip on, UDP and TCP; port 0 picks one.
	Gossip string
	// Seeds are other brokers' gossip addresses. A broker keeps trying them
	// while it knows fewer members than seeds, so that the order in which
	// brokers start, and healed partitions, do not matter.
	Seeds []string
	// Listener and PacketConn, when set, are the TCP listener and the UDP
	// socket to gossip on, bound already to Gossip's address (see
	// HoldLoopback), instead of binding it here. Join takes them over:
	// they are closed when gossip stops, or if Join fails.
	Listener   net.Listener
	PacketConn net.PacketConn
	// WrapTransport, when set, wraps the gossip transport (tests fault it).
	WrapTransport func(memberlist.Transport) memberlist.Transport
	// ProbeInterval is how often a random member is probed; failure is
	// declared about three probe intervals after a member goes silent.
	// Default 250ms, for a LAN.
	ProbeInterval time.Duration
	Logger        *slog.Logger
}

// Membership is this broker's view of who is alive.
type Membership struct {
	cfg  Config
	list *memberlist.Memberlist
	log  *slog.Logger

	mu      sync.Mutex
	alive   map[int32]Member
	changed chan struct{}
	// refused are members, each in one life, whose listener refused a
	// connection after accepting one (refused.go): out of Alive though
	// gossip still lists them. watches are the connections held to the
	// others' listeners to notice; closing stops new ones.
	refused  map[int32]Member
	watches  map[int32]*watch
	watchers sync.WaitGroup
	closing  bool

	stop chan struct{}
	done chan struct{}
}

// Join starts gossiping and joins whichever seeds answer.
func Join(cfg Config) (*Membership, error) {
	if cfg.ProbeInterval <= 0 {
		cfg.ProbeInterval = 250 * time.Millisecond
	}
	m := &Membership{cfg: cfg, log: cfg.Logger, alive: map[int32]Member{}, changed: make(chan struct{}),
		refused: map[int32]Member{}, watches: map[int32]*watch{}, stop: make(chan struct{}), done: make(chan struct{})}
	if m.log == nil {
		m.log = slog.Default()
	}
	host, portText, err := net.SplitHostPort(cfg.Gossip)
	if err != nil {
		return nil, fmt.Errorf("gossip address %q: %w", cfg.Gossip, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("gossip address %q: %w", cfg.Gossip, err)
	}
	mc := memberlist.DefaultLANConfig()
	mc.Name = "broker-" + strconv.Itoa(int(cfg.Self.ID))
	mc.BindAddr, mc.BindPort = host, port
	mc.AdvertiseAddr, mc.AdvertisePort = host, port
	// Tuned for brokers on one LAN (or one machine): probe often, and
	// declare a silent member dead after about three probe intervals.
	// memberlist's LAN defaults take about five seconds.
	mc.ProbeInterval = cfg.ProbeInterval
	mc.ProbeTimeout = mc.ProbeInterval / 2
	mc.SuspicionMult = 2
	mc.GossipInterval = mc.ProbeInterval / 2
	mc.PushPullInterval = 5 * time.Second
	mc.GossipToTheDeadTime = 10 * time.Second
	mc.DeadNodeReclaimTime = time.Second // a restarted broker may come back at once
	mc.Events = &events{m}
	mc.Delegate = &delegate{m}
	mc.LogOutput = io.Discard
	if (cfg.Listener == nil) != (cfg.PacketConn == nil) {
		return nil, errors.New("membership: a held gossip address needs both its listener and its packet socket")
	}
	if cfg.Listener != nil || cfg.WrapTransport != nil || port == 0 {
		var t memberlist.Transport
		if cfg.Listener != nil {
			if cfg.Listener.Addr().String() != cfg.Gossip || cfg.PacketConn.LocalAddr().String() != cfg.Gossip {
				cfg.Listener.Close()
				cfg.PacketConn.Close()
				return nil, fmt.Errorf("membership: the held gossip sockets are on %s and %s, not %s", cfg.Listener.Addr(), cfg.PacketConn.LocalAddr(), cfg.Gossip)
			}
			ht, err := newHeldTransport(cfg.Listener, cfg.PacketConn, m.log)
			if err != nil {
				cfg.Listener.Close()
				cfg.PacketConn.Close()
				return nil, err
			}
			t = ht
		} else {
			nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{host}, BindPort: port})
			if err != nil {
				return nil, err
			}
			if port == 0 {
				mc.BindPort = nt.GetAutoBindPort()
				mc.AdvertisePort = mc.BindPort
			}
			t = nt
		}
		if cfg.WrapTransport != nil {
			t = cfg.WrapTransport(t)
		}
		mc.Transport = t
	}
	list, err := memberlist.Create(mc)
	if err != nil {
		if mc.Transport != nil {
			mc.Transport.Shutdown()
		}
		return nil, err
	}
	m.list = list
	// A broker's own address may be among the seeds (every broker can be
	// given the same list); it does not join itself.
	var others []string
	for _, seed := range cfg.Seeds {
		if seed != m.Addr() {
			others = append(others, seed)
		}
	}
	m.cfg.Seeds = others
	go m.rejoin()
	return m, nil
}

// Addr is the gossip address, host:port, with the port it got.
func (m *Membership) Addr() string {
	n := m.list.LocalNode()
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// rejoin joins the seeds whenever fewer members are alive than there are
// other seeds, plus this broker: at start, before the others are up, and after a
// partition, when each side has declared the other dead.
func (m *Membership) rejoin() {
	defer close(m.done)
	t := time.NewTicker(m.cfg.ProbeInterval)
	defer t.Stop()
	for {
		if len(m.cfg.Seeds) > 0 && m.list.NumMembers() < len(m.cfg.Seeds)+1 {
			m.list.Join(m.cfg.Seeds)
		}
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
	}
}

// Alive returns the members alive now, by id, this broker included:
// those gossip says are alive, except any whose listener refused a
// connection in the life gossip shows (refused.go).
func (m *Membership) Alive() map[int32]Member {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[int32]Member, len(m.alive))
	for k, v := range m.alive {
		if m.refused[k] != v {
			out[k] = v
		}
	}
	return out
}

// Changed returns a channel closed at the next change of Alive.
func (m *Membership) Changed() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changed
}

// Close leaves the cluster gracefully, so that the others do not wait for
// failure detection, and stops gossiping.
func (m *Membership) Close() error {
	close(m.stop)
	<-m.done
	m.list.Leave(time.Second)
	err := m.list.Shutdown()
	m.stopWatches()
	return err
}

// Kill stops gossiping without a word, as a crash would.
func (m *Membership) Kill() error {
	close(m.stop)
	<-m.done
	err := m.list.Shutdown()
	m.stopWatches()
	return err
}

// stopWatches closes the connections held to the others' listeners and
// waits for their goroutines.
func (m *Membership) stopWatches() {
	m.mu.Lock()
	m.closing = true
	for id, w := range m.watches {
		w.cancel()
		delete(m.watches, id)
	}
	m.mu.Unlock()
	m.watchers.Wait()
}

func (m *Membership) update(n *memberlist.Node, alive bool) {
	var mem Member
	if err := json.Unmarshal(n.Meta, &mem); err != nil {
		m.log.Warn("gossip: member without broker metadata", "node", n.Name, "err", err)
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.alive[mem.ID]; ok == alive && old == mem {
		return
	}
	if alive {
		m.alive[mem.ID] = mem
	} else {
		delete(m.alive, mem.ID)
	}
	m.log.Info("membership", "broker", mem.ID, "alive", alive, "members", len(m.alive))
	m.watchMembers()
	m.notify()
}

// notify wakes whoever waits on Changed. The caller holds m.mu.
func (m *Membership) notify() {
	close(m.changed)
	m.changed = make(chan struct{})
}

// events turns memberlist's notifications into Alive's map.
type events struct{ m *Membership }

func (e *events) NotifyJoin(n *memberlist.Node)   { e.m.update(n, true) }
func (e *events) NotifyLeave(n *memberlist.Node)  { e.m.update(n, false) }
func (e *events) NotifyUpdate(n *memberlist.Node) { e.m.update(n, true) }

// delegate gives memberlist this broker's metadata; the rest of the
// delegate's hooks (user messages, state exchange) are unused.
type delegate struct{ m *Membership }

func (d *delegate) NodeMeta(limit int) []byte {
	b, _ := json.Marshal(d.m.cfg.Self)
	if len(b) > limit {
		return nil
	}
	return b
}
func (d *delegate) NotifyMsg([]byte)                           {}
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *delegate) LocalState(join bool) []byte                { return nil }
func (d *delegate) MergeRemoteState(buf []byte, join bool)     {}

// FreeLoopbackAddrs returns n distinct loopback addresses whose ports are
// free for both TCP and UDP, as a gossip address needs, for tests and
// tools that start several brokers on one machine. The ports are free when
// checked; nothing reserves them after.
func FreeLoopbackAddrs(n int) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for tries := 0; len(out) < n; tries++ {
		if tries > 100*n {
			return nil, errors.New("membership: no free loopback ports")
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		addr := ln.Addr().String()
		pc, err := net.ListenPacket("udp", addr)
		ln.Close()
		if err != nil || seen[addr] {
			continue
		}
		pc.Close()
		seen[addr] = true
		out = append(out, addr)
	}
	return out, nil
}
