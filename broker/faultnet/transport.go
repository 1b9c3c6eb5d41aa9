package faultnet

import (
	"net"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// Transport wraps a memberlist transport (in practice a
// *memberlist.NetTransport, or membership's on sockets a test holds) for
// this node, so that the cluster's gossip
// suffers the same faults as its TCP connections:
//
//   - WriteTo an address whose owner is cut from this node, or when either
//     end is paused, drops the packet and reports success, as a lost UDP
//     packet would.
//   - DialTimeout is faulted like Dial.
//   - Streams arriving on StreamCh stall while this node is paused.
//   - Packets arriving while this node is paused, or from a node cut from
//     it, are dropped.
//
// Everything else is passed to t. The wrapper deliberately does not
// implement memberlist.NodeAwareTransport, even when t does: memberlist
// then calls WriteTo and DialTimeout, which are faulted, through a shim of
// its own, rather than WriteToAddress and DialAddressTimeout, which would
// bypass the faults.
func (nd *Node) Transport(t memberlist.Transport) memberlist.Transport {
	ft := &transport{
		inner:      t,
		node:       nd,
		packetCh:   make(chan *memberlist.Packet),
		streamCh:   make(chan net.Conn),
		stopping:   make(chan struct{}),
		innerEnded: make(chan struct{}),
	}
	ft.relays.Add(2)
	go ft.relayPackets()
	go ft.relayStreams()
	return ft
}

// transport is the memberlist.Transport that Node.Transport returns.
// Incoming packets and streams pass through two relay goroutines, which
// read the inner transport's channels and decide what to forward on the
// wrapper's own channels.
type transport struct {
	inner memberlist.Transport
	node  *Node

	packetCh chan *memberlist.Packet
	streamCh chan net.Conn

	// stopping is closed when Shutdown begins: the relays stop forwarding
	// and only drain the inner channels. innerEnded is closed when the
	// inner transport's Shutdown has returned: nothing more can arrive, so
	// the relays end. See Shutdown for why it takes two steps.
	stopping, innerEnded chan struct{}
	relays               sync.WaitGroup
	shutdownOnce         sync.Once
	shutdownErr          error
}

// FinalAdvertiseAddr passes through to the inner transport.
func (t *transport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	return t.inner.FinalAdvertiseAddr(ip, port)
}

// WriteTo sends a packet to addr, unless the network says it is lost.
func (t *transport) WriteTo(b []byte, addr string) (time.Time, error) {
	if t.node.dropsPacketTo(addr) {
		// memberlist's packets are UDP: losing one is not an error the
		// sender hears about, so neither is dropping one.
		return time.Now(), nil
	}
	return t.inner.WriteTo(b, addr)
}

// PacketCh returns the channel of packets that survived the faults.
func (t *transport) PacketCh() <-chan *memberlist.Packet { return t.packetCh }

// DialTimeout opens a stream to addr, faulted like Node.Dial.
func (t *transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	peer, known, err := t.node.dialCheck(addr)
	if err != nil {
		return nil, err
	}
	c, err := t.inner.DialTimeout(addr, timeout)
	if err != nil {
		return nil, err
	}
	return t.node.dialed(c, peer, known)
}

// StreamCh returns the channel of incoming streams, each wrapped to stall
// while this node is paused.
func (t *transport) StreamCh() <-chan net.Conn { return t.streamCh }

// Shutdown shuts the inner transport down and ends the relays. It is done
// in two steps because of a trap in NetTransport: its Shutdown waits for
// its listener goroutines, and one of them may be blocked handing a packet
// to a relay, while the relay is blocked handing the packet before it to
// a reader that has stopped reading. So the relays first stop forwarding
// and only drain, which lets the inner Shutdown finish; then they end.
func (t *transport) Shutdown() error {
	t.shutdownOnce.Do(func() {
		close(t.stopping)
		t.shutdownErr = t.inner.Shutdown()
		close(t.innerEnded)
		t.relays.Wait()
	})
	return t.shutdownErr
}

// relayPackets forwards incoming packets, dropping those the network
// loses, until the inner channel closes or Shutdown.
func (t *transport) relayPackets() {
	defer t.relays.Done()
	in := t.inner.PacketCh()
	for {
		select {
		case p, ok := <-in:
			if !ok {
				close(t.packetCh)
				return
			}
			if t.node.dropsPacketFrom(p.From) {
				continue
			}
			select {
			case t.packetCh <- p:
			case <-t.stopping:
				t.drain()
				return
			}
		case <-t.stopping:
			t.drain()
			return
		}
	}
}

// relayStreams forwards incoming streams, wrapped to stall while this node
// is paused, until the inner channel closes or Shutdown. Cuts need no
// check here: the dialing side refuses or closes streams across a cut.
func (t *transport) relayStreams() {
	defer t.relays.Done()
	in := t.inner.StreamCh()
	for {
		select {
		case c, ok := <-in:
			if !ok {
				close(t.streamCh)
				return
			}
			wc := newConn(t.node.network, c, t.node.id, 0, false)
			select {
			case t.streamCh <- wc:
			case <-t.stopping:
				_ = c.Close()
				t.drain()
				return
			}
		case <-t.stopping:
			t.drain()
			return
		}
	}
}

// drain discards whatever the inner transport still delivers while it
// shuts down, closing streams so they do not leak, until its Shutdown has
// returned. Both relays drain both channels; that is harmless, and it
// keeps each relay's ending simple.
func (t *transport) drain() {
	packets, streams := t.inner.PacketCh(), t.inner.StreamCh()
	for {
		select {
		case _, ok := <-packets:
			if !ok {
				packets = nil // a closed channel would be ready forever
			}
		case c, ok := <-streams:
			if !ok {
				streams = nil
				continue
			}
			_ = c.Close()
		case <-t.innerEnded:
			return
		}
	}
}

// dropsPacketTo reports whether a packet this node sends to addr is lost:
// either end is paused, or the link to addr's owner is cut.
func (nd *Node) dropsPacketTo(addr string) bool {
	n := nd.network
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.paused[nd.id] {
		return true
	}
	peer, known := n.ownerLocked(addr)
	return known && (n.paused[peer] || n.cut[linkOf(nd.id, peer)])
}

// dropsPacketFrom reports whether a packet arriving at this node from addr
// is lost: this node is paused, or the link to the sender is cut. The
// sender's WriteTo drops most such packets already; checking here too
// drops those that were in flight when the fault began, and those sent by
// a transport that faultnet does not wrap.
func (nd *Node) dropsPacketFrom(from net.Addr) bool {
	n := nd.network
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.paused[nd.id] {
		return true
	}
	if from == nil {
		return false
	}
	peer, known := n.ownerLocked(from.String())
	return known && n.cut[linkOf(nd.id, peer)]
}
