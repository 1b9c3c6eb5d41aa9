// Package faultnet is a network that tests can break on purpose. A test of
// a replicated cluster runs N brokers in one process, all on loopback, and
// routes every broker's traffic to its peers through this package; the test
// then cuts links and pauses brokers to see that the cluster survives. MIT
// 6.824's labrpc and hashicorp/raft's fuzzy tests do the same.
//
// Each broker is a Node, named by an int32 id. A node dials its peers
// through Node.Dial, wraps its listener with Node.Listener and its gossip
// transport with Node.Transport; the test holds the Network and calls Cut,
// Isolate, Heal, Pause and Resume on it.
//
// Traffic is real loopback TCP and UDP: faultnet never carries a byte
// itself. It only refuses dials, closes connections, drops packets and
// makes reads and writes wait. So a test exercises the broker's real
// network code, timeouts and all.
//
// Everything a fault depends on (which links are cut, which nodes are
// paused, which connections are open) sits under one mutex in the Network.
// A goroutine that must wait for that state to change waits on a channel
// that is closed, and replaced by a fresh one, at every change: closing a
// channel wakes every waiter at once, without polling.
package faultnet

import (
	"errors"
	"net"
	"sync"
)

// errLinkCut is the cause of every failure faultnet injects: a refused dial
// or a connection it closed. Callers see it wrapped in a *net.OpError, as
// they would a real network failure.
var errLinkCut = errors.New("faultnet: link cut")

// link names the connection between two nodes, whichever way round they
// are given: a cut is symmetric, so Cut(1, 2) and Cut(2, 1) are one link.
type link struct{ lo, hi int32 }

func linkOf(a, b int32) link {
	if a > b {
		a, b = b, a
	}
	return link{a, b}
}

// Network is the fault state shared by a set of nodes: which links are cut
// and which nodes are paused. Its methods are safe for concurrent use.
type Network struct {
	mu sync.Mutex

	nodes  map[int32]*Node
	owners map[string]int32 // normalized address -> id of the node that owns it
	cut    map[link]bool
	paused map[int32]bool

	// conns holds every open connection dialed between two known nodes,
	// so that Cut can find and close the ones that cross the cut.
	conns map[*conn]struct{}

	// changed is closed and replaced each time cuts or pauses change.
	// A stalled Read or Write waits on it and then looks again.
	changed chan struct{}
}

// New returns a network with no nodes, no cuts and no pauses.
func New() *Network {
	return &Network{
		nodes:   make(map[int32]*Node),
		owners:  make(map[string]int32),
		cut:     make(map[link]bool),
		paused:  make(map[int32]bool),
		conns:   make(map[*conn]struct{}),
		changed: make(chan struct{}),
	}
}

// Node returns node id's endpoint, creating it on first use. Calling it
// again with the same id returns the same *Node.
func (n *Network) Node(id int32) *Node {
	n.mu.Lock()
	defer n.mu.Unlock()
	nd, ok := n.nodes[id]
	if !ok {
		nd = &Node{network: n, id: id}
		n.nodes[id] = nd
	}
	return nd
}

// Cut cuts the link between a and b, both directions: dials between them
// fail, established connections between them (dialed through Node.Dial or
// Node.Transport's DialTimeout, either direction) are closed, and gossip
// packets between them are dropped. Cutting a node from itself does
// nothing.
func (n *Network) Cut(a, b int32) {
	n.mu.Lock()
	closing := n.cutLocked(a, b)
	n.notifyLocked()
	n.mu.Unlock()
	closeAll(closing)
}

// Isolate cuts id from each of others, or from every other known node when
// others is empty. A node is known once Network.Node has returned it.
func (n *Network) Isolate(id int32, others ...int32) {
	n.mu.Lock()
	if len(others) == 0 {
		for other := range n.nodes {
			others = append(others, other)
		}
	}
	var closing []net.Conn
	for _, other := range others {
		closing = append(closing, n.cutLocked(id, other)...)
	}
	n.notifyLocked()
	n.mu.Unlock()
	closeAll(closing)
}

// cutLocked marks the link between a and b cut and returns the underlying
// connections that crossed it, for the caller to close once it has let go
// of the mutex. Each wrapper is marked cut first, so its Read and Write
// report the cut rather than a bare "use of closed connection".
func (n *Network) cutLocked(a, b int32) []net.Conn {
	if a == b {
		return nil
	}
	n.cut[linkOf(a, b)] = true
	var closing []net.Conn
	for c := range n.conns {
		if linkOf(c.self, c.peer) == linkOf(a, b) {
			c.cut = true
			delete(n.conns, c)
			closing = append(closing, c.Conn)
		}
	}
	return closing
}

// closeAll closes conns, ignoring errors: a connection that is already
// closed is as cut as it needs to be.
func closeAll(conns []net.Conn) {
	for _, c := range conns {
		_ = c.Close()
	}
}

// Heal restores every cut link. Paused nodes stay paused, and connections
// that a cut closed stay closed: the nodes must dial again, as they would
// after a real partition.
func (n *Network) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	clear(n.cut)
	n.notifyLocked()
}

// Pause freezes a node as SIGSTOP freezes a process: nothing it sends
// leaves, nothing sent to it is read, until Resume. Its connections stay
// open, so its peers see only silence, not a closed connection.
func (n *Network) Pause(id int32) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.paused[id] = true
	n.notifyLocked()
}

// Resume undoes Pause: reads and writes that were waiting go ahead.
func (n *Network) Resume(id int32) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.paused, id)
	n.notifyLocked()
}

// Reachable reports whether a and b can talk: the link between them is
// not cut and neither is paused.
func (n *Network) Reachable(a, b int32) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return !n.cut[linkOf(a, b)] && !n.paused[a] && !n.paused[b]
}

// notifyLocked wakes every goroutine waiting for the fault state to
// change, by closing the channel they wait on. A fresh channel takes its
// place for the next change.
func (n *Network) notifyLocked() {
	close(n.changed)
	n.changed = make(chan struct{})
}

// ownerLocked returns the node that owns addr, and whether any node does.
func (n *Network) ownerLocked(addr string) (int32, bool) {
	id, ok := n.owners[normalizeAddr(addr)]
	return id, ok
}

// normalizeAddr spells an IP address one way, so that "[::1]:9092" and
// "[0:0:0:0:0:0:0:1]:9092" name the same owner. Host names are left as
// they are: faultnet does not resolve them, so a node must Own an address
// spelled as its peers will dial it.
func normalizeAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); ip != nil {
		host = ip.String()
	}
	return net.JoinHostPort(host, port)
}

// Node is one broker's endpoint in a Network. All of the broker's traffic
// to its peers goes through it.
type Node struct {
	network *Network
	id      int32
}

// ID returns the node's id.
func (nd *Node) ID() int32 { return nd.id }

// Own records that addr (host:port, as given to Dial or WriteTo) belongs
// to this node, so that traffic to addr is traffic to this node. A node may
// own several addresses: its Kafka port and its gossip port, say. If
// another node owned addr before (a restarted broker given a port an old
// one used), this node now owns it. Addresses no node owns are never
// faulted: clients outside the cluster, for example.
func (nd *Node) Own(addr string) {
	n := nd.network
	n.mu.Lock()
	defer n.mu.Unlock()
	n.owners[normalizeAddr(addr)] = nd.id
}

// dialCheck decides whether this node may dial addr. It returns the id of
// addr's owner and whether there is one, or an error when the link to the
// owner is cut. A paused end does not stop the dial: a frozen process's
// kernel still completes the TCP handshake, and the connection stalls
// instead.
func (nd *Node) dialCheck(addr string) (peer int32, known bool, err error) {
	n := nd.network
	n.mu.Lock()
	defer n.mu.Unlock()
	peer, known = n.ownerLocked(addr)
	if known && n.cut[linkOf(nd.id, peer)] {
		return 0, false, &net.OpError{Op: "dial", Net: "tcp", Err: errLinkCut}
	}
	return peer, known, nil
}

// dialed wraps c, a connection this node has just dialed to addr's owner
// peer (if known), so that it stalls and is cut as the network says.
// The link may have been cut while the dial was under way; then c is
// closed at once and the dial fails, as if it had come after the cut.
func (nd *Node) dialed(c net.Conn, peer int32, known bool) (net.Conn, error) {
	n := nd.network
	wc := newConn(n, c, nd.id, peer, known)
	if !known {
		// A peer outside the cluster is never cut, so there is nothing
		// to track; the connection still stalls while this node is paused.
		return wc, nil
	}
	n.mu.Lock()
	if n.cut[linkOf(nd.id, peer)] {
		n.mu.Unlock()
		_ = c.Close()
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: c.RemoteAddr(), Err: errLinkCut}
	}
	n.conns[wc] = struct{}{}
	n.mu.Unlock()
	return wc, nil
}
