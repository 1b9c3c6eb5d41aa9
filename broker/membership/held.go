package membership

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// HoldLoopback binds a TCP listener and a UDP socket to one free loopback
// port, as a gossip address needs, and keeps them: given to Join as
// Config.Listener and Config.PacketConn, the port is this broker's from
// the moment it was chosen. A port that is only checked and let go (as
// FreeLoopbackAddrs does) can be taken by anything else on the machine
// before the broker binds it, and a test cluster then fails to start with
// "address already in use".
func HoldLoopback() (net.Listener, net.PacketConn, error) {
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, err
		}
		pc, err := net.ListenPacket("udp", ln.Addr().String())
		if err != nil { // the port is free for TCP but not for UDP: another one
			ln.Close()
			continue
		}
		return ln, pc, nil
	}
	return nil, nil, errors.New("membership: no loopback port free for both TCP and UDP")
}

// heldTransport is memberlist's transport on a listener and a UDP socket
// bound before Join (see HoldLoopback). It does what memberlist's own
// NetTransport does with the sockets it binds itself: packets go by UDP,
// streams by TCP. It owns the sockets, and closes them at Shutdown.
type heldTransport struct {
	ln  net.Listener
	pc  net.PacketConn
	log *slog.Logger

	packetCh chan *memberlist.Packet
	streamCh chan net.Conn
	stop     chan struct{} // closed when Shutdown begins
	wg       sync.WaitGroup
	once     sync.Once
}

func newHeldTransport(ln net.Listener, pc net.PacketConn, log *slog.Logger) (*heldTransport, error) {
	if _, ok := ln.Addr().(*net.TCPAddr); !ok {
		return nil, fmt.Errorf("gossip listener on %s is not TCP", ln.Addr())
	}
	if udp, ok := pc.(*net.UDPConn); ok {
		// As NetTransport does: a large receive buffer, so that a burst
		// of gossip is not dropped; halved until the system allows it.
		for size := 2 << 20; size > 0 && udp.SetReadBuffer(size) != nil; size /= 2 {
		}
	}
	t := &heldTransport{ln: ln, pc: pc, log: log, packetCh: make(chan *memberlist.Packet), streamCh: make(chan net.Conn), stop: make(chan struct{})}
	t.wg.Add(2)
	go t.accept()
	go t.read()
	return t, nil
}

// FinalAdvertiseAddr is the given address, or the listener's.
func (t *heldTransport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	if ip == "" {
		a := t.ln.Addr().(*net.TCPAddr)
		return a.IP, a.Port, nil
	}
	a := net.ParseIP(ip)
	if a == nil {
		return nil, 0, fmt.Errorf("advertise address %q is not an IP address", ip)
	}
	if a4 := a.To4(); a4 != nil {
		a = a4
	}
	return a, port, nil
}

// WriteTo sends a packet by UDP.
func (t *heldTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return time.Time{}, err
	}
	_, err = t.pc.WriteTo(b, ua)
	return time.Now(), err
}

// PacketCh returns the packets received.
func (t *heldTransport) PacketCh() <-chan *memberlist.Packet { return t.packetCh }

// DialTimeout opens a stream by TCP.
func (t *heldTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", addr, timeout)
}

// StreamCh returns the streams accepted.
func (t *heldTransport) StreamCh() <-chan net.Conn { return t.streamCh }

// Shutdown closes the sockets and waits for the goroutines reading them.
func (t *heldTransport) Shutdown() error {
	t.once.Do(func() {
		close(t.stop)
		t.ln.Close()
		t.pc.Close()
		t.wg.Wait()
	})
	return nil
}

func (t *heldTransport) stopping() bool {
	select {
	case <-t.stop:
		return true
	default:
		return false
	}
}

// accept hands accepted streams to memberlist until Shutdown, backing off
// on errors as NetTransport does.
func (t *heldTransport) accept() {
	defer t.wg.Done()
	var delay time.Duration
	for {
		c, err := t.ln.Accept()
		if err != nil {
			if t.stopping() || errors.Is(err, net.ErrClosed) {
				return
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			t.log.Warn("gossip: accepting a stream", "err", err)
			select {
			case <-time.After(delay):
			case <-t.stop:
				return
			}
			continue
		}
		delay = 0
		select {
		case t.streamCh <- c:
		case <-t.stop:
			c.Close()
			return
		}
	}
}

// read hands received packets to memberlist until Shutdown.
func (t *heldTransport) read() {
	defer t.wg.Done()
	for {
		buf := make([]byte, 65536)
		n, from, err := t.pc.ReadFrom(buf)
		now := time.Now()
		if err != nil {
			if t.stopping() || errors.Is(err, net.ErrClosed) {
				return
			}
			t.log.Warn("gossip: reading a packet", "err", err)
			continue
		}
		if n == 0 {
			continue
		}
		select {
		case t.packetCh <- &memberlist.Packet{Buf: buf[:n], From: from, Timestamp: now}:
		case <-t.stop:
			return
		}
	}
}
