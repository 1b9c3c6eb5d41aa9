// Package brokerproc runs `klab broker` child processes that form one
// cluster, each known by its broker id: started, stopped, paused, killed
// and started again. `klab cluster` runs its brokers with it (Ctrl-C stops
// them all, the console's classroom controls act on one), the perf
// measurements that need real processes (a failover after SIGKILL, a
// broker's resident memory) use it, and so do the tests of cmd/klab.
package brokerproc

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Cluster is a set of `klab broker` child processes.
type Cluster struct {
	bin  string     // the klab binary
	args [][]string // broker id's command line is args[id-1]
	// LogDir, if set, takes each broker's output, in broker-N.log; unset,
	// it goes to standard output, each line prefixed [broker N].
	LogDir string
	// OnExit, if set, is called when a process ends, by itself or killed;
	// stopping says that StopAll asked them all to stop.
	OnExit func(id int32, err error, stopping bool)

	mu       sync.Mutex
	procs    map[int32]*process // the running ones
	stopping bool
	wg       sync.WaitGroup
}

// process is one running broker process.
type process struct {
	cmd    *exec.Cmd
	paused bool
	exited chan struct{} // closed once it has exited and been waited for
}

// New returns the cluster of brokers 1 to len(args), none of them started:
// broker id runs bin with the command line args[id-1].
func New(bin string, args [][]string) *Cluster {
	return &Cluster{bin: bin, args: args, procs: map[int32]*process{}}
}

// Start starts broker id's process, with its command line.
func (c *Cluster) Start(id int32) (pid int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if id < 1 || int(id) > len(c.args) {
		return 0, fmt.Errorf("no broker %d in this cluster", id)
	}
	if c.stopping {
		return 0, errors.New("the cluster is stopping")
	}
	if c.procs[id] != nil {
		return 0, fmt.Errorf("broker %d is running", id)
	}
	cmd := exec.Command(c.bin, c.args[id-1]...)
	var out io.ReadCloser
	if c.LogDir != "" {
		log, err := os.OpenFile(filepath.Join(c.LogDir, fmt.Sprintf("broker-%d.log", id)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return 0, err
		}
		defer log.Close() // the child has its own copy
		cmd.Stdout, cmd.Stderr = log, log
	} else if out, err = cmd.StdoutPipe(); err != nil {
		return 0, err
	} else {
		cmd.Stderr = cmd.Stdout
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	c.procs[id] = p
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if out != nil {
			prefix(out, fmt.Sprintf("[broker %d] ", id))
		}
		err := cmd.Wait()
		c.mu.Lock()
		delete(c.procs, id)
		stopping := c.stopping
		c.mu.Unlock()
		close(p.exited)
		if c.OnExit != nil {
			c.OnExit(id, err, stopping)
		}
	}()
	return cmd.Process.Pid, nil
}

// prefix copies r to standard output line by line, each line prefixed.
func prefix(r io.Reader, p string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fmt.Println(p + sc.Text())
	}
}

// Signal sends broker id's process a signal, and returns its pid and a
// channel closed when it has exited.
func (c *Cluster) Signal(id int32, sig syscall.Signal) (pid int, exited <-chan struct{}, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.procs[id]
	if p == nil {
		return 0, nil, fmt.Errorf("broker %d is not running", id)
	}
	if p.paused && sig == syscall.SIGTERM {
		// A stopped process would not act on SIGTERM until resumed.
		p.cmd.Process.Signal(syscall.SIGCONT)
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return 0, nil, err
	}
	switch sig {
	case syscall.SIGSTOP:
		p.paused = true
	case syscall.SIGCONT, syscall.SIGTERM:
		p.paused = false
	}
	return p.cmd.Process.Pid, p.exited, nil
}

// Running returns the pid of broker id's process and a channel closed when
// it exits; ok is false if it is not running.
func (c *Cluster) Running(id int32) (pid int, exited <-chan struct{}, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.procs[id]
	if p == nil {
		return 0, nil, false
	}
	return p.cmd.Process.Pid, p.exited, true
}

// Kill sends broker id's process SIGKILL (no goodbye, no flush) and waits
// until it has exited; it returns its pid.
func (c *Cluster) Kill(id int32) (pid int, err error) {
	pid, exited, err := c.Signal(id, syscall.SIGKILL)
	if err != nil {
		return 0, err
	}
	<-exited
	return pid, nil
}

// Act is the console's classroom controls (console.Controls).
func (c *Cluster) Act(id int32, action string) error {
	var pid int
	var err error
	switch action {
	case "start":
		pid, err = c.Start(id)
	case "stop":
		pid, _, err = c.Signal(id, syscall.SIGTERM)
	case "kill":
		pid, _, err = c.Signal(id, syscall.SIGKILL)
	case "pause":
		pid, _, err = c.Signal(id, syscall.SIGSTOP)
	case "resume":
		pid, _, err = c.Signal(id, syscall.SIGCONT)
	default:
		return fmt.Errorf("unknown action %q: stop, kill, pause, resume or start", action)
	}
	if err != nil {
		return err
	}
	fmt.Printf("[console] broker %d: %s (pid %d)\n", id, action, pid)
	return nil
}

// Processes is each broker process's state (console.Controls).
func (c *Cluster) Processes() map[int32]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[int32]string{}
	for i := range c.args {
		id := int32(i + 1)
		switch p := c.procs[id]; {
		case p == nil:
			out[id] = "stopped"
		case p.paused:
			out[id] = "paused"
		default:
			out[id] = "running"
		}
	}
	return out
}

// StopAll asks every broker to stop (SIGTERM: a controlled shutdown) and
// kills those still running after grace.
func (c *Cluster) StopAll(grace time.Duration) {
	c.mu.Lock()
	c.stopping = true
	for _, p := range c.procs {
		if p.paused {
			p.cmd.Process.Signal(syscall.SIGCONT)
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	c.mu.Unlock()
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		c.mu.Lock()
		for _, p := range c.procs { // those still running, whenever started
			p.cmd.Process.Kill()
		}
		c.mu.Unlock()
		<-done
	}
}
