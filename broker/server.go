package broker

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/bufpool"
	"klab.dev/klab/broker/log"
)

// handler serves one API. It returns the response to send, or nil for none
// (a Produce with acks=0), or an error to close the connection with.
type handler func(b *Broker, ctx context.Context, r *request) (kmsg.Response, error)

// api is one API the broker implements, with the versions it implements.
type api struct {
	key      kmsg.Key
	min, max int16
	handle   handler
	// betweenBrokers marks an API that brokers send each other, for the
	// active controller: registerBetweenBrokers says how it differs.
	betweenBrokers bool
}

// apis is filled by each API's file, beside its handler.
var apis = map[kmsg.Key]api{}

func register(key kmsg.Key, min, max int16, h handler) {
	apis[key] = api{key: key, min: min, max: max, handle: h}
}

// registerBetweenBrokers registers an API that only brokers send, to the
// active controller (AlterPartition, BrokerHeartbeat,
// AllocateProducerIds). ApiVersions does not list it: Kafka serves these on
// its controllers' listener and lists on the listener clients use only the
// APIs clients may send, so a client never picks one. klab has one
// listener, so the broker still serves them on it; a broker sending one
// does not learn from ApiVersions that its peer speaks it, but knows it
// (dialPeer): every broker of a klab cluster runs the same code.
func registerBetweenBrokers(key kmsg.Key, min, max int16, h handler) {
	apis[key] = api{key: key, min: min, max: max, handle: h, betweenBrokers: true}
}

// request is one decoded request and what its header said.
type request struct {
	key         kmsg.Key
	version     int16
	correlation int32
	clientID    *string
	body        kmsg.Request
	// clientHost is the client's address as Kafka shows it in
	// DescribeGroups: "/" and the IP.
	clientHost string
	// unsupported is set on an ApiVersions request of a version the broker
	// does not know: it is answered, in version 0, with UNSUPPORTED_VERSION.
	unsupported bool
	// records are a Fetch response's record batches, by partition, set by
	// handleFetch: encodeFetch leaves room for them, and the connection's
	// writer sends them from the log's files.
	records fetchedRecords
}

// serveConn runs one client connection: this goroutine reads a request,
// handles it and queues the response, then reads the next, so requests are
// handled one at a time and answered in order, as Kafka's network layer
// does; a second goroutine writes the responses. Requests are read from
// in, which is nc or, when the first bytes were already read, a reader
// that gives them back first.
//
// What a connection may hold is bounded: a request's buffer is taken from
// queued.max.request.bytes as it grows, before each part is read, and
// given back once the request is handled; at most queuedResponses
// responses wait for the writer; a read that gets no byte for
// connections.max.idle.ms, or a write that makes no progress for
// Config.ResponseWriteTimeout, closes the connection.
func (b *Broker) serveConn(ctx context.Context, nc net.Conn, in io.Reader) {
	defer nc.Close()
	// reading ends when the writer gives up, so that a reader waiting for
	// room in queued.max.request.bytes stops waiting.
	reading, stopReading := context.WithCancel(ctx)
	defer stopReading()
	out := make(chan outgoing, queuedResponses)
	written := make(chan struct{})
	go func() {
		defer close(written)
		err := writeResponses(nc, out, b.cfg.ResponseWriteTimeout)
		switch {
		case err == nil || errors.Is(err, net.ErrClosed):
		case errors.Is(err, os.ErrDeadlineExceeded):
			b.log.Warn("closing connection: its client has taken no byte of a response for ResponseWriteTimeout", "remote", nc.RemoteAddr(), "timeout", b.cfg.ResponseWriteTimeout)
		default:
			b.log.Warn("closing connection", "remote", nc.RemoteAddr(), "err", fmt.Errorf("writing a response: %w", err))
		}
		if err != nil {
			stopReading()
			nc.Close() // so that the reader, waiting for a request, stops too
		}
	}()
	defer func() {
		close(out)
		<-written
		// What a writer that gave up left: its buffers, and its files.
		for resp := range out {
			resp.release()
		}
	}()
	buffered := bufio.NewReaderSize(idleReader{in, nc, b.cfg.ConnectionsMaxIdle}, 64<<10)
	for {
		var claim requestClaim
		frame, err := b.readRequest(reading, buffered, &claim)
		if err != nil {
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded):
				b.log.Info("closing connection idle for connections.max.idle.ms", "remote", nc.RemoteAddr(), "idle", b.cfg.ConnectionsMaxIdle)
			case !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && reading.Err() == nil:
				b.log.Warn("closing connection", "remote", nc.RemoteAddr(), "err", err)
			}
			return
		}
		resp, err := b.serveFrame(ctx, frame, clientHost(nc.RemoteAddr()))
		bufpool.Put(frame) // handlers keep nothing of a request once they answer
		b.requests.release(&claim)
		if err != nil {
			b.log.Warn("closing connection", "remote", nc.RemoteAddr(), "err", err)
			return
		}
		if resp == nil {
			continue
		}
		select {
		case out <- *resp:
		case <-written: // the writer gave up, and closed the connection
			resp.release()
			return
		}
	}
}

// queuedResponses is how many encoded responses of one connection may wait
// for the writer while it writes another. Kafka lets one response wait:
// it reads no further request of a connection until the last response is
// sent. Two keep the reader handling the next request while the writer
// writes, and bound what a client that does not read can make the broker
// hold: a Fetch response may be fetch.max.bytes (55 MiB) large.
const queuedResponses = 2

// serveFrame decodes one request frame, handles it, and encodes the
// response, or returns nil when there is none to send.
func (b *Broker) serveFrame(ctx context.Context, frame []byte, host string) (*outgoing, error) {
	// A request's time starts once it is read, as Kafka's TotalTimeMs
	// does, and ends once its response is encoded: writing it is the
	// writer goroutine's (serveConn), and waits only on the client.
	start := time.Now()
	r, err := parseRequest(frame)
	if err != nil {
		return nil, err
	}
	defer func() { b.metrics.served(r, time.Since(start)) }()
	r.clientHost = host
	resp, err := b.dispatch(ctx, r)
	if err != nil || resp == nil {
		return nil, err
	}
	if f, ok := resp.(*kmsg.FetchResponse); ok {
		// The record batches go out from the log's files, between the
		// framing's pieces (encodeFetch); the files are let go once
		// written.
		return &outgoing{pieces: encodeFetch(r, f), records: r.records}, nil
	}
	encoded := encodeResponse(r, resp)
	return &outgoing{pieces: []piece{{bytes: encoded}}, pooled: [][]byte{encoded}}, nil
}

// outgoing is an encoded response: pieces to write in turn, the buffers
// among them (or under them) to give back to bufpool once written, and
// the log ranges among them to let go of.
type outgoing struct {
	pieces  []piece
	pooled  [][]byte
	records fetchedRecords
}

// piece is part of an encoded response: bytes, or, when bytes is nil, a
// range of a log segment file (a Fetch's record batches), sent from the
// file (sendRecords).
type piece struct {
	bytes   []byte
	records log.Slice
}

func (p piece) len() int {
	if p.bytes != nil {
		return len(p.bytes)
	}
	return p.records.Len()
}

// release gives the response's buffers back and lets go of its files.
func (o *outgoing) release() {
	for _, b := range o.pooled {
		bufpool.Put(b)
	}
	o.records.close()
}

// dispatch hands a request to its API's handler, after checking that the
// broker implements the API at the request's version.
func (b *Broker) dispatch(ctx context.Context, r *request) (kmsg.Response, error) {
	//klab:lesson 03 begin (*Broker).dispatch
	a, ok := apis[r.key]
	if !ok {
		return unimplemented(r)
	}
	if r.unsupported || r.version < a.min || r.version > a.max {
		if r.key == kmsg.ApiVersions {
			return apiVersionsUnsupported(r), nil // so the client learns what is
		}
		return nil, fmt.Errorf("%s version %d is not implemented (versions %d to %d are)", r.key.Name(), r.version, a.min, a.max)
	}
	return a.handle(b, ctx, r)
	//klab:lesson 03 stub
	// return nil, lessons.Todo("03", "(*Broker).dispatch")
	//klab:lesson 03 end
}

// clientHost is "/" and the IP of a client's address, as Kafka's
// DescribeGroups shows a member's host.
func clientHost(addr net.Addr) string {
	if addr == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		host = addr.String()
	}
	return "/" + host
}

// unimplemented answers a request of an API klab does not implement (yet):
// its response, with UNSUPPORTED_VERSION in the top-level error code and a
// message saying so where the response has them. ApiVersions does not list
// the API, so a client that checks never sends it; one that does not (or a
// tool sending it by hand) gets an error it can show, not a closed
// connection it may wait on, retrying. (Kafka implements every API it
// knows, so it never faces this.) A response without a top-level error
// code has nowhere to say it: the connection is closed.
func unimplemented(r *request) (kmsg.Response, error) {
	resp := r.body.ResponseKind()
	v := reflect.ValueOf(resp).Elem()
	code := v.FieldByName("ErrorCode")
	if !code.IsValid() || code.Kind() != reflect.Int16 {
		return nil, fmt.Errorf("%s (API key %d) is not implemented", r.key.Name(), r.key)
	}
	code.SetInt(int64(kerr.UnsupportedVersion.Code))
	if msg := v.FieldByName("ErrorMessage"); msg.IsValid() && msg.Type() == reflect.TypeOf((*string)(nil)) {
		text := fmt.Sprintf("klab does not implement %s", r.key.Name())
		msg.Set(reflect.ValueOf(&text))
	}
	return resp, nil
}

// readRequest reads one size-prefixed request. A size that is negative or
// larger than socket.request.max.bytes is refused before anything is
// allocated for it, and the connection closed. The request's buffer is
// taken from queued.max.request.bytes as it grows (readFrame); the caller
// releases claim once the request is handled.
func (b *Broker) readRequest(ctx context.Context, in *bufio.Reader, claim *requestClaim) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(in, size[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	if n < 0 || n > b.cfg.SocketRequestMaxBytes {
		return nil, fmt.Errorf("request of %d bytes is outside socket.request.max.bytes (%d)", n, b.cfg.SocketRequestMaxBytes)
	}
	frame, err := b.readFrame(ctx, in, int(n), claim)
	if err != nil {
		b.requests.release(claim)
	}
	return frame, err
}

// firstChunk is the most readFrame allocates for a request before its
// bytes arrive: as much as the connection's read buffer holds.
const firstChunk = 64 << 10

// readFrame reads a request of n bytes, its size prefix already read, into
// a buffer that grows as the bytes arrive: it starts at firstChunk at most
// and doubles, up to n, each size taken from queued.max.request.bytes
// before it is allocated. A client that declares 100 MiB and sends nothing
// costs 64 KiB, not 100 MiB; one that sends it all costs a copy of at
// most n bytes more, as append's doubling does.
func (b *Broker) readFrame(ctx context.Context, in io.Reader, n int, claim *requestClaim) ([]byte, error) {
	var frame []byte
	got := 0
	for {
		size := min(n, max(firstChunk, 2*len(frame)))
		if err := b.requests.take(ctx, claim, int64(size)); err != nil {
			bufpool.Put(frame)
			return nil, err
		}
		bigger := bufpool.Get(size)
		copy(bigger, frame[:got])
		bufpool.Put(frame)
		b.requests.give(claim, int64(len(frame)))
		frame = bigger

		m, err := io.ReadFull(in, frame[got:])
		got += m
		if err != nil {
			bufpool.Put(frame)
			return nil, err
		}
		if got == n {
			return frame, nil
		}
	}
}

// idleReader reads a connection's requests with a deadline of
// connections.max.idle.ms on each read: a connection whose client sends
// nothing for that long, between requests or within one, is closed. The
// time its requests take to handle does not count: the deadline starts
// anew with each read.
type idleReader struct {
	in   io.Reader
	nc   net.Conn
	idle time.Duration
}

func (r idleReader) Read(p []byte) (int, error) {
	r.nc.SetReadDeadline(time.Now().Add(r.idle))
	return r.in.Read(p)
}

// parseRequest decodes a request header and body. The header is
//
//	api key int16, api version int16, correlation id int32,
//	client id (nullable string: int16 length, -1 for null),
//	and, for flexible versions (KIP-482, header v2), tagged fields.
func parseRequest(frame []byte) (*request, error) {
	rd := reader{b: frame}
	r := &request{key: kmsg.Key(rd.int16()), version: rd.int16(), correlation: rd.int32()}
	r.clientID = rd.nullableString()
	if rd.err != nil {
		return nil, fmt.Errorf("request header: %w", rd.err)
	}
	// Only keys kmsg cannot decode are refused here; one it can decode but
	// the broker does not implement (DescribeAcls, say) is dispatch's to answer.
	body := kmsg.RequestForKey(int16(r.key))
	if body == nil {
		return nil, fmt.Errorf("API key %d is unknown", r.key)
	}
	if r.version < 0 || r.version > body.MaxVersion() {
		if r.key == kmsg.ApiVersions {
			r.unsupported = true
			return r, nil
		}
		return nil, fmt.Errorf("%s version %d is not implemented", r.key.Name(), r.version)
	}
	body.SetVersion(r.version)
	if body.IsFlexible() {
		rd.skipTags()
	}
	if rd.err != nil {
		return nil, fmt.Errorf("request header: %w", rd.err)
	}
	if err := body.ReadFrom(rd.b); err != nil {
		return nil, fmt.Errorf("%s v%d body: %w", r.key.Name(), r.version, err)
	}
	r.body = body
	return r, nil
}

// encodeResponse frames a response: size, correlation id, tagged fields for
// flexible versions (except ApiVersions, whose response header is always
// v0 so that a client can read it before it knows what the broker speaks),
// and the body.
func encodeResponse(r *request, resp kmsg.Response) []byte {
	resp.SetVersion(r.version)
	b := bufpool.Get(sizeHint(resp))[:8]
	binary.BigEndian.PutUint32(b[4:], uint32(r.correlation))
	if resp.IsFlexible() && r.key != kmsg.ApiVersions {
		b = append(b, 0)
	}
	b = resp.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// sizeHint guesses a response's encoded size, so that encoding it does not
// grow and copy the buffer again and again: a Fetch response is mostly its
// record batches, megabytes of them.
func sizeHint(resp kmsg.Response) int {
	n := 256
	if f, ok := resp.(*kmsg.FetchResponse); ok {
		for _, t := range f.Topics {
			n += len(t.Topic) + 16
			for _, p := range t.Partitions {
				n += 64 + len(p.RecordBatches)
			}
		}
	}
	return n
}

// writeResponses writes responses as they come, flushing when none waits,
// and gives each response's buffers back for the next one. It returns the
// first write error: the caller closes the connection, and the responses
// still queued are let go of by serveConn. (A piece larger than the
// buffer's room goes to the connection without being copied into it; a
// Fetch's records go from the log's files, sendRecords.)
func writeResponses(nc net.Conn, out <-chan outgoing, timeout time.Duration) error {
	w := bufio.NewWriterSize(progressWriter{nc, timeout}, 64<<10)
	for resp := range out {
		var err error
		for _, p := range resp.pieces {
			if p.bytes != nil {
				_, err = w.Write(p.bytes)
			} else {
				err = sendRecords(w, nc, p.records, timeout)
			}
			if err != nil {
				break
			}
		}
		resp.release()
		if err != nil {
			return err
		}
		if len(out) == 0 {
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

// writePiece is how much progressWriter writes under one deadline.
const writePiece = 1 << 20

// progressWriter writes to a connection in pieces of writePiece bytes,
// each with a deadline of timeout: a client that stops reading makes a
// write fail after timeout, however large the response, while one on a
// slow link that keeps reading (a piece per timeout, 35 KB/s for 30 s) is
// never cut off.
type progressWriter struct {
	nc      net.Conn
	timeout time.Duration
}

func (w progressWriter) Write(p []byte) (int, error) {
	written := 0
	for written < len(p) {
		w.nc.SetWriteDeadline(time.Now().Add(w.timeout))
		n, err := w.nc.Write(p[written:min(len(p), written+writePiece)])
		written += n
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// reader decodes the primitive types of a request header.
type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b) {
		if r.err == nil {
			r.err = io.ErrUnexpectedEOF
		}
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) int16() int16 {
	if b := r.take(2); b != nil {
		return int16(binary.BigEndian.Uint16(b))
	}
	return 0
}

func (r *reader) int32() int32 {
	if b := r.take(4); b != nil {
		return int32(binary.BigEndian.Uint32(b))
	}
	return 0
}

func (r *reader) nullableString() *string {
	n := r.int16()
	if n < 0 || r.err != nil {
		return nil
	}
	s := string(r.take(int(n)))
	return &s
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = fmt.Errorf("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// skipTags skips a tagged-field section: a count, then tag, size, bytes.
func (r *reader) skipTags() {
	for n := r.uvarint(); n > 0 && r.err == nil; n-- {
		r.uvarint()
		size := r.uvarint()
		if size > uint64(len(r.b)) {
			r.err = io.ErrUnexpectedEOF
			return
		}
		r.take(int(size))
	}
}
