package perf

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"klab.dev/klab/cmd/klab/internal/brokerproc"
)

// MemoryConfig is one memory run.
type MemoryConfig struct {
	Klab string // the klab binary, run as one `klab broker` process
	Dir  string // the broker's data and its output, broker-1.log
	// Connections is how many connections announce a large request.
	Connections int
	// DeclaredBytes is the size each connection's 4-byte prefix
	// announces; the broker's socket.request.max.bytes, 104,857,600,
	// is the most it accepts.
	DeclaredBytes int32
	// SettleTimeout is how long, after the connections close, to wait
	// for the broker's memory to come back down to twice its idle size.
	SettleTimeout time.Duration
	// Step, if set, is told what the run is doing.
	Step func(msg string)
}

// MemoryResult is a broker process's resident memory (VmRSS) at the
// three points of a memory run, in bytes.
type MemoryResult struct {
	Idle   int64 // started, ready, no client
	Loaded int64 // with the connections open, each having announced a request
	After  int64 // once the connections closed and the broker settled, or SettleTimeout passed
	// Settled is how long after the connections closed After was read.
	Settled time.Duration
	// VirtualIdle and VirtualLoaded are the process's address space
	// (VmSize) idle and under load: memory it asked the system for,
	// touched or not. Untouched pages are not resident, so a buffer
	// allocated for a request that never comes shows here first.
	VirtualIdle, VirtualLoaded int64
}

// memoryLoadWait is how long the broker is given to act on the
// announced requests before its memory is read.
const memoryLoadWait = 2 * time.Second

// Memory measures what a broker keeps for requests that never come: a
// client (buggy, or hostile) can send a request's 4-byte size and nothing
// more. It starts one `klab broker` process, reads its resident memory
// once it is ready and idle, opens cfg.Connections connections that each
// send only a size prefix of cfg.DeclaredBytes, reads the memory again,
// closes them, and reads it a last time once it is down to twice the idle
// size or cfg.SettleTimeout has passed. A broker that allocates each
// request's buffer up front, and keeps it after, fails the figure.
func Memory(ctx context.Context, cfg MemoryConfig) (MemoryResult, error) {
	if cfg.Klab == "" {
		return MemoryResult{}, errors.New("memory: no klab binary to run the broker")
	}
	step := func(format string, args ...any) {
		if cfg.Step != nil {
			cfg.Step(fmt.Sprintf(format, args...))
		}
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return MemoryResult{}, err
	}
	c, err := brokerproc.StartLoopback(cfg.Klab, cfg.Dir, 1)
	if err != nil {
		return MemoryResult{}, err
	}
	defer c.Stop()
	if err := c.WaitBrokers(ctx); err != nil {
		return MemoryResult{}, err
	}
	pid, _, ok := c.Running(1)
	if !ok {
		return MemoryResult{}, errors.New("memory: the broker exited")
	}
	// Let the start-up's own allocations (the controller, the metadata
	// log) settle before calling it idle.
	if err := sleep(ctx, time.Second); err != nil {
		return MemoryResult{}, err
	}
	var res MemoryResult
	if res.Idle, err = ResidentBytes(pid); err != nil {
		return res, err
	}
	if res.VirtualIdle, err = statusBytes(pid, "VmSize"); err != nil {
		return res, err
	}
	step("broker pid %d ready: VmRSS %s, VmSize %s", pid, formatMB(res.Idle), formatMB(res.VirtualIdle))

	prefix := binary.BigEndian.AppendUint32(nil, uint32(cfg.DeclaredBytes))
	conns := make([]net.Conn, 0, cfg.Connections)
	defer func() {
		for _, conn := range conns {
			conn.Close()
		}
	}()
	var dialer net.Dialer
	for range cfg.Connections {
		conn, err := dialer.DialContext(ctx, "tcp", c.Addrs[0])
		if err != nil {
			return res, err
		}
		conns = append(conns, conn)
		if _, err := conn.Write(prefix); err != nil {
			return res, err
		}
	}
	// The broker acts on each prefix when it reads it: poll for a while
	// and keep the largest reading.
	for deadline := time.Now().Add(memoryLoadWait); time.Now().Before(deadline); {
		rss, err := ResidentBytes(pid)
		if err != nil {
			return res, err
		}
		res.Loaded = max(res.Loaded, rss)
		virtual, err := statusBytes(pid, "VmSize")
		if err != nil {
			return res, err
		}
		res.VirtualLoaded = max(res.VirtualLoaded, virtual)
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return res, err
		}
	}
	step("%d connections each announced a %d-byte request: VmRSS %s, VmSize %s", cfg.Connections, cfg.DeclaredBytes, formatMB(res.Loaded), formatMB(res.VirtualLoaded))

	for _, conn := range conns {
		conn.Close()
	}
	conns = nil
	closed := time.Now()
	for {
		if res.After, err = ResidentBytes(pid); err != nil {
			return res, err
		}
		res.Settled = time.Since(closed)
		if res.After <= 2*res.Idle || res.Settled >= cfg.SettleTimeout {
			break
		}
		if err := sleep(ctx, 250*time.Millisecond); err != nil {
			return res, err
		}
	}
	step("connections closed; %s later: VmRSS %s", res.Settled.Round(100*time.Millisecond), formatMB(res.After))
	return res, nil
}

// ResidentBytes reads a process's resident set size, VmRSS in
// /proc/PID/status (Linux only).
func ResidentBytes(pid int) (int64, error) { return statusBytes(pid, "VmRSS") }

// statusBytes reads one of the sizes in /proc/PID/status, which the
// kernel writes in kB (KiB): "VmRSS:	   12345 kB".
func statusBytes(pid int, field string) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// formatMB writes bytes in megabytes (10^6), as the figures print them.
func formatMB(bytes int64) string { return fmt.Sprintf("%.0f MB", float64(bytes)/1e6) }

// sleep waits for d, or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
