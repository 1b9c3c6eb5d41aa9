package controller

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// RaftMagic is the first byte of a metadata-quorum (raft) connection. Raft
// shares the broker's Kafka port: a Kafka request starts with its size, a
// positive int32, so its first byte is never 0xFF, and the broker hands a
// connection that starts with it to the controller instead.
const RaftMagic = 0xFF

// streams is the raft transport's stream layer: it dials peers' Kafka
// ports (through the broker's dialer, which tests fault) and accepts the
// connections the broker's listener passes on.
//
// It also keeps track of the connections raft accepted, until raft's
// handler of each lets go of it (see wait).
type streams struct {
	addr  addr
	dial  func(ctx context.Context, network, addr string) (net.Conn, error)
	conns chan net.Conn

	closeOnce sync.Once
	closed    chan struct{}

	mu       sync.Mutex
	accepted map[*acceptedConn]struct{}
	handlers sync.WaitGroup // one per accepted connection not yet closed
}

// acceptedConn is a connection raft accepted. Raft's handler closes it
// when it returns, and only then.
type acceptedConn struct {
	net.Conn
	s    *streams
	once sync.Once
}

func (c *acceptedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.s.mu.Lock()
		delete(c.s.accepted, c)
		c.s.mu.Unlock()
		c.s.handlers.Done()
	})
	return err
}

type addr string

func (a addr) Network() string { return "tcp" }
func (a addr) String() string  { return string(a) }

func newStreams(self string, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *streams {
	return &streams{addr: addr(self), dial: dial, conns: make(chan net.Conn), closed: make(chan struct{}), accepted: map[*acceptedConn]struct{}{}}
}

// deliver hands an accepted connection, its magic byte already read, to raft.
func (s *streams) deliver(c net.Conn) {
	select {
	case s.conns <- c:
	case <-s.closed:
		c.Close()
	}
}

func (s *streams) Accept() (net.Conn, error) {
	select {
	case c := <-s.conns:
		s.mu.Lock()
		defer s.mu.Unlock()
		select {
		case <-s.closed: // closed meanwhile: wait may be counting already
			c.Close()
			return nil, net.ErrClosed
		default:
		}
		ac := &acceptedConn{Conn: c, s: s}
		s.accepted[ac] = struct{}{}
		s.handlers.Add(1)
		return ac, nil
	case <-s.closed:
		return nil, net.ErrClosed
	}
}

func (s *streams) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeOnce.Do(func() { close(s.closed) })
	return nil
}

// wait closes the stream layer and every connection raft accepted, and
// waits until raft's handler of each has returned. A handler outlives
// raft's Shutdown, and answers heartbeats on its own goroutine (raft's
// fast path), writing the term to the metadata log's store: the store must
// not close before the handlers are gone, or raft panics ("failed to save
// current term"). The raft transport must be closed first: a handler may
// be waiting for raft, and only the transport's shutdown releases it.
func (s *streams) wait() {
	s.Close()
	s.mu.Lock()
	for c := range s.accepted {
		c.Conn.Close() // a handler blocked reading returns
	}
	s.mu.Unlock()
	s.handlers.Wait()
}

func (s *streams) Addr() net.Addr { return s.addr }

func (s *streams) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := s.dial(ctx, "tcp", string(address))
	if err != nil {
		return nil, err
	}
	c.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte{RaftMagic}); err != nil {
		c.Close()
		return nil, errors.Join(errors.New("raft: sending the stream's first byte"), err)
	}
	c.SetWriteDeadline(time.Time{})
	return c, nil
}

// unpipelined is raft's network transport without pipelined replication:
// raft then sends a follower one AppendEntries at a time and waits for
// its answer. A pipeline keeps up to 128 in flight, which a metadata log
// of small records does not need; and a pipeline to a follower that
// stopped answering was seen to block the leader's replication, and so
// its Shutdown, forever (a broker stopped during a rolling restart under
// load never finished stopping).
type unpipelined struct{ *raft.NetworkTransport }

// AppendEntriesPipeline declines: raft falls back to single requests.
func (unpipelined) AppendEntriesPipeline(raft.ServerID, raft.ServerAddress) (raft.AppendPipeline, error) {
	return nil, raft.ErrPipelineReplicationNotSupported
}
