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
type streams struct {
	addr  addr
	dial  func(ctx context.Context, network, addr string) (net.Conn, error)
	conns chan net.Conn

	closeOnce sync.Once
	closed    chan struct{}
}

type addr string

func (a addr) Network() string { return "tcp" }
func (a addr) String() string  { return string(a) }

func newStreams(self string, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *streams {
	return &streams{addr: addr(self), dial: dial, conns: make(chan net.Conn), closed: make(chan struct{})}
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
		return c, nil
	case <-s.closed:
		return nil, net.ErrClosed
	}
}

func (s *streams) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	return nil
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
