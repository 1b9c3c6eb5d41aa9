// Package client is the client side of Kafka's wire protocol, as the
// course's own producer, consumer and admin client use it: a connection to
// one broker that negotiates versions with ApiVersions and pipelines
// requests, and a view of the cluster, from Metadata, that knows which
// broker leads each partition and keeps one connection to each.
package client

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// versionCaps holds the versions past which the course's clients would
// have to change how they build a request: from version 13, Produce and
// Fetch name topics by id instead of by name.
var versionCaps = map[kmsg.Key]int16{
	kmsg.Produce: 12,
	kmsg.Fetch:   12,
}

// ErrConnClosed is returned for requests on a connection that has closed.
var ErrConnClosed = errors.New("client: connection closed")

// Conn is a connection to one broker. Requests may be sent from many
// goroutines; they go out in order, are answered in order, and each caller
// gets its own answer.
type Conn struct {
	addr     string
	clientID string
	nc       net.Conn
	versions map[int16]int16 // highest version of each API both sides speak

	writeMu     sync.Mutex // serialises writes, and the order of pending
	correlation int32
	pending     chan *Call // awaiting an answer, in the order sent

	closeOnce sync.Once
	closed    chan struct{}
	err       error // why it closed, set before closed is closed
}

// Call is one request written, awaiting its answer.
type Call struct {
	correlation int32
	resp        kmsg.Response
	flexible    bool
	noResponse  bool
	done        chan error
}

// Dial connects to a broker and asks it which API versions it speaks.
func Dial(ctx context.Context, addr, clientID string) (*Conn, error) {
	var d net.Dialer
	return DialVia(ctx, d.DialContext, addr, clientID)
}

// DialFunc opens a network connection, as net.Dialer.DialContext does.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// DialVia is Dial over the given dialer: a broker reaches its peers through
// its own network, which tests can cut.
func DialVia(ctx context.Context, dial DialFunc, addr, clientID string) (*Conn, error) {
	nc, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &Conn{addr: addr, clientID: clientID, nc: nc, pending: make(chan *Call, 256), closed: make(chan struct{})}
	go c.readLoop()
	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 3
	av.ClientSoftwareName, av.ClientSoftwareVersion = "klab", "1"
	resp, err := c.send(ctx, av, 3)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("ApiVersions to %s: %w", addr, err)
	}
	r := resp.(*kmsg.ApiVersionsResponse)
	if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
		c.Close()
		return nil, fmt.Errorf("ApiVersions to %s: %w", addr, err)
	}
	c.versions = map[int16]int16{}
	for _, k := range r.ApiKeys {
		ours := kmsg.RequestForKey(k.ApiKey)
		if ours == nil {
			continue
		}
		top := ours.MaxVersion()
		if cap, ok := versionCaps[kmsg.Key(k.ApiKey)]; ok {
			top = min(top, cap)
		}
		if k.MinVersion > top {
			continue
		}
		c.versions[k.ApiKey] = min(k.MaxVersion, top)
	}
	return c, nil
}

// Assume lets requests of API key go out at up to version (or the highest
// version kmsg knows, if lower), although the broker's ApiVersions answer
// did not list the API: a broker does not list the APIs brokers send each
// other, and its peers, which run the same code, know that it speaks them.
// Call it before the connection is used.
func (c *Conn) Assume(key kmsg.Key, version int16) {
	if ours := kmsg.RequestForKey(int16(key)); ours != nil {
		c.versions[int16(key)] = min(version, ours.MaxVersion())
	}
}

// Addr is the broker's address.
func (c *Conn) Addr() string { return c.addr }

// Request sends req at the highest version both sides speak and waits for
// the answer. A Produce with acks=0 gets no answer: Request returns nil, nil
// once it is written.
func (c *Conn) Request(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	call, err := c.Send(ctx, req)
	if err != nil {
		return nil, err
	}
	return call.Wait(ctx)
}

// RequestAt is Request at a given version, which the broker must speak: a
// broker forwarding a request sends it on at the version it came in.
func (c *Conn) RequestAt(ctx context.Context, req kmsg.Request, version int16) (kmsg.Response, error) {
	if v, ok := c.versions[req.Key()]; !ok || version > v {
		return nil, fmt.Errorf("%w: broker %s does not speak %s v%d", kerr.UnsupportedVersion, c.addr, kmsg.NameForKey(req.Key()), version)
	}
	return c.send(ctx, req, version)
}

// Send writes req and returns without waiting for the answer, so that a
// caller can have several requests in flight and still know they went out
// in the order it sent them.
func (c *Conn) Send(ctx context.Context, req kmsg.Request) (*Call, error) {
	v, ok := c.versions[req.Key()]
	if !ok {
		return nil, fmt.Errorf("%w: broker %s does not speak %s", kerr.UnsupportedVersion, c.addr, kmsg.NameForKey(req.Key()))
	}
	return c.write(ctx, req, v)
}

// Wait waits for the answer to a request Send wrote; nil for a Produce with
// acks=0.
func (cl *Call) Wait(ctx context.Context) (kmsg.Response, error) {
	if cl.noResponse {
		return nil, nil
	}
	select {
	case err := <-cl.done:
		if err != nil {
			return nil, err
		}
		return cl.resp, nil
	case <-ctx.Done():
		// The answer will still come, in order; the reader drops it.
		return nil, ctx.Err()
	}
}

// Version is the version Request uses for an API, or -1 if the broker does
// not speak it.
func (c *Conn) Version(key int16) int16 {
	if v, ok := c.versions[key]; ok {
		return v
	}
	return -1
}

func (c *Conn) send(ctx context.Context, req kmsg.Request, version int16) (kmsg.Response, error) {
	call, err := c.write(ctx, req, version)
	if err != nil {
		return nil, err
	}
	return call.Wait(ctx)
}

func (c *Conn) write(ctx context.Context, req kmsg.Request, version int16) (*Call, error) {
	req.SetVersion(version)
	resp := req.ResponseKind()
	resp.SetVersion(version)
	cl := &Call{resp: resp, flexible: req.IsFlexible() && req.Key() != int16(kmsg.ApiVersions), done: make(chan error, 1)}
	if p, ok := req.(*kmsg.ProduceRequest); ok && p.Acks == 0 {
		cl.noResponse = true
	}

	c.writeMu.Lock()
	select {
	case <-c.closed:
		c.writeMu.Unlock()
		return nil, c.closeErr()
	default:
	}
	c.correlation++
	cl.correlation = c.correlation
	frame := c.frame(req, cl.correlation)
	if deadline, ok := ctx.Deadline(); ok {
		c.nc.SetWriteDeadline(deadline)
	} else {
		c.nc.SetWriteDeadline(time.Time{})
	}
	// Queue the call before writing: the answer may arrive before Write returns.
	var err error
	if !cl.noResponse {
		select {
		case c.pending <- cl:
		case <-c.closed:
			err = c.closeErr()
		}
	}
	if err == nil {
		_, err = c.nc.Write(frame)
	}
	c.writeMu.Unlock()
	if err != nil {
		c.fail(err)
		return nil, err
	}
	return cl, nil
}

// frame encodes a request: size, header (v1, or v2 with tagged fields for
// flexible versions), body.
func (c *Conn) frame(req kmsg.Request, correlation int32) []byte {
	b := make([]byte, 4, 64)
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(correlation))
	b = binary.BigEndian.AppendUint16(b, uint16(len(c.clientID)))
	b = append(b, c.clientID...)
	if req.IsFlexible() {
		b = append(b, 0)
	}
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// readLoop reads answers and hands each to the call that waits for it.
func (c *Conn) readLoop() {
	in := bufio.NewReaderSize(c.nc, 64<<10)
	for {
		var size [4]byte
		if _, err := io.ReadFull(in, size[:]); err != nil {
			c.fail(err)
			return
		}
		n := int32(binary.BigEndian.Uint32(size[:]))
		if n < 4 || n > 1<<30 {
			c.fail(fmt.Errorf("response of %d bytes from %s", n, c.addr))
			return
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(in, body); err != nil {
			c.fail(err)
			return
		}
		var cl *Call
		select {
		case cl = <-c.pending:
		default:
			c.fail(fmt.Errorf("%s answered a request it was not sent", c.addr))
			return
		}
		if got := int32(binary.BigEndian.Uint32(body)); got != cl.correlation {
			c.fail(fmt.Errorf("%s answered correlation id %d, expected %d", c.addr, got, cl.correlation))
			cl.done <- c.closeErr() // it is off the queue: fail drains only what is on it
			return
		}
		body = body[4:]
		if cl.flexible {
			body = skipTags(body)
		}
		cl.done <- cl.resp.ReadFrom(body)
	}
}

// skipTags skips the response header's tagged fields.
func skipTags(b []byte) []byte {
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return b
	}
	b = b[k:]
	for ; n > 0; n-- {
		_, k = binary.Uvarint(b)
		if k <= 0 {
			return b
		}
		b = b[k:]
		size, k := binary.Uvarint(b)
		if k <= 0 || size > uint64(len(b)-k) {
			return b
		}
		b = b[k+int(size):]
	}
	return b
}

// fail closes the connection and fails every call still waiting.
func (c *Conn) fail(err error) {
	c.closeOnce.Do(func() {
		c.err = err
		close(c.closed)
		c.nc.Close()
		// A sender queues its call under writeMu after checking closed, so
		// once we hold writeMu no call can join the queue: drain it.
		c.writeMu.Lock()
		defer c.writeMu.Unlock()
		for {
			select {
			case cl := <-c.pending:
				cl.done <- c.closeErr()
			default:
				return
			}
		}
	})
}

func (c *Conn) closeErr() error {
	if c.err == nil || errors.Is(c.err, net.ErrClosed) {
		return ErrConnClosed
	}
	return fmt.Errorf("%w: %v", ErrConnClosed, c.err)
}

// Closed reports whether the connection has closed.
func (c *Conn) Closed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// Close closes the connection; waiting requests fail.
func (c *Conn) Close() error {
	c.fail(net.ErrClosed)
	return nil
}
