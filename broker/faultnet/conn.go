package faultnet

import (
	"context"
	"net"
	"os"
	"time"
)

// Dial connects from this node to addr over TCP, whatever network says:
// brokers only speak TCP to each other, and loopback has no other
// transport worth faulting. It fails at once when the link to addr's owner
// is cut. A dial from or to a paused node succeeds, but the connection
// stalls until both ends are running.
func (nd *Node) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	peer, known, err := nd.dialCheck(addr)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return nd.dialed(c, peer, known)
}

// Listener wraps a listener of this node's: every connection it accepts
// stalls while this node is paused. Who is on the other end is unknown on
// accept (the peer's source port is ephemeral), so cuts apply on the
// dialing side only. That is enough, because cuts are symmetric: the
// dialer's wrapper closes the connection, and this end sees it closed.
func (nd *Node) Listener(ln net.Listener) net.Listener {
	return &listener{Listener: ln, node: nd}
}

// listener is the net.Listener that Node.Listener returns. Addr and Close
// come from the wrapped listener.
type listener struct {
	net.Listener
	node *Node
}

// Accept waits for the next connection and wraps it so that it stalls
// while the node is paused. Accept itself does not stall: a frozen
// process's kernel still completes handshakes into the listen backlog, so
// the dialer cannot tell the difference.
func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newConn(l.node.network, c, l.node.id, 0, false), nil
}

// conn wraps a real connection of node self. Read and Write wait while the
// connection is stalled (an end is paused) and fail once it is cut. The
// other methods (LocalAddr, RemoteAddr) come from the embedded conn.
//
// All of conn's mutable fields are guarded by network.mu, the network's
// mutex, so that Cut can mark connections cut in the same critical section
// that marks the link cut.
type conn struct {
	net.Conn // the real connection
	network  *Network

	self int32 // the node this end belongs to
	peer int32 // the node at the other end, if known is true
	// known is false for accepted connections and dials to addresses no
	// node owns: those stall only while self is paused, and are never cut.
	known bool

	closed bool // Close has been called
	cut    bool // a Cut closed the real connection

	// Deadlines are kept here as well as on the real connection, because
	// a stalled Read or Write waits here and never reaches the real one.
	readDeadline, writeDeadline time.Time

	// wake is closed and replaced when this connection's own state (its
	// deadlines, or closed) changes, to wake a stalled Read or Write.
	// Network.changed does the same for the network's state.
	wake chan struct{}
}

func newConn(n *Network, c net.Conn, self, peer int32, known bool) *conn {
	return &conn{Conn: c, network: n, self: self, peer: peer, known: known, wake: make(chan struct{})}
}

// Read reads from the real connection once it is not stalled.
func (c *conn) Read(b []byte) (int, error) {
	if err := c.wait("read"); err != nil {
		return 0, err
	}
	nr, err := c.Conn.Read(b)
	return nr, c.explain("read", err)
}

// Write writes to the real connection once it is not stalled.
func (c *conn) Write(b []byte) (int, error) {
	if err := c.wait("write"); err != nil {
		return 0, err
	}
	nw, err := c.Conn.Write(b)
	return nw, c.explain("write", err)
}

// explain replaces the error of a Read or Write that a Cut interrupted, a
// bare "use of closed network connection", with one that names the cut.
func (c *conn) explain(op string, err error) error {
	if err == nil {
		return nil
	}
	c.network.mu.Lock()
	cut := c.cut
	c.network.mu.Unlock()
	if cut {
		return c.opError(op, errLinkCut)
	}
	return err
}

// stalledLocked reports whether Read and Write must wait: an end is paused.
func (c *conn) stalledLocked() bool {
	p := c.network.paused
	return p[c.self] || (c.known && p[c.peer])
}

// wait blocks while the connection is stalled. It returns nil when Read or
// Write (op) may go ahead, or an error when the connection was closed or
// cut, or op's deadline passed while waiting.
func (c *conn) wait(op string) error {
	n := c.network
	for {
		n.mu.Lock()
		switch {
		case c.closed:
			n.mu.Unlock()
			return c.opError(op, net.ErrClosed)
		case c.cut:
			n.mu.Unlock()
			return c.opError(op, errLinkCut)
		case !c.stalledLocked():
			n.mu.Unlock()
			return nil
		}
		deadline := c.readDeadline
		if op == "write" {
			deadline = c.writeDeadline
		}
		changed, wake := n.changed, c.wake
		n.mu.Unlock()

		// A nil channel never delivers, so with no deadline set the
		// select below waits for a state change alone.
		var expired <-chan time.Time
		var timer *time.Timer
		if !deadline.IsZero() {
			d := time.Until(deadline)
			if d <= 0 {
				return c.opError(op, os.ErrDeadlineExceeded)
			}
			timer = time.NewTimer(d)
			expired = timer.C
		}
		select {
		case <-changed:
		case <-wake:
		case <-expired:
			return c.opError(op, os.ErrDeadlineExceeded)
		}
		if timer != nil {
			timer.Stop()
		}
		// Something changed: loop to look at the state again.
	}
}

// opError wraps err as the net package would, so callers can treat it
// like any network error: os.ErrDeadlineExceeded inside a *net.OpError is
// a net.Error whose Timeout() is true, exactly as a real deadline gives.
func (c *conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// Close closes the connection and wakes any Read or Write stalled on it.
// Closing twice is harmless; only the first Close reports an error.
func (c *conn) Close() error {
	n := c.network
	n.mu.Lock()
	if c.closed {
		n.mu.Unlock()
		return nil
	}
	c.closed = true
	alreadyCut := c.cut
	delete(n.conns, c)
	c.wakeLocked()
	n.mu.Unlock()
	if alreadyCut {
		// Cut has closed the real connection already; closing it again
		// would only report that.
		return nil
	}
	return c.Conn.Close()
}

// SetDeadline sets both deadlines; see SetReadDeadline.
func (c *conn) SetDeadline(t time.Time) error {
	c.network.mu.Lock()
	c.readDeadline, c.writeDeadline = t, t
	c.wakeLocked()
	c.network.mu.Unlock()
	return c.Conn.SetDeadline(t)
}

// SetReadDeadline records the deadline for a stalled Read and passes it to
// the real connection for a Read that is not stalled. A Read stalled now
// is woken to measure itself against the new deadline, as net.Conn
// promises.
func (c *conn) SetReadDeadline(t time.Time) error {
	c.network.mu.Lock()
	c.readDeadline = t
	c.wakeLocked()
	c.network.mu.Unlock()
	return c.Conn.SetReadDeadline(t)
}

// SetWriteDeadline is SetReadDeadline for Write.
func (c *conn) SetWriteDeadline(t time.Time) error {
	c.network.mu.Lock()
	c.writeDeadline = t
	c.wakeLocked()
	c.network.mu.Unlock()
	return c.Conn.SetWriteDeadline(t)
}

// wakeLocked wakes any Read or Write stalled on this connection.
func (c *conn) wakeLocked() {
	close(c.wake)
	c.wake = make(chan struct{})
}
