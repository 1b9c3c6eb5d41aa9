package main

import (
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

// brokerProcesses are `klab broker` child processes forming one cluster,
// each known by its broker id: started, stopped, paused and started again,
// by `klab cluster` (Ctrl-C stops them all, the console's classroom
// controls act on one), by `klab perf failover` and by tests.
type brokerProcesses struct {
	self string     // the klab binary
	args [][]string // broker id's command line is args[id-1]
	// logDir, if set, takes each broker's output, in broker-N.log; unset,
	// it goes to standard output, each line prefixed [broker N].
	logDir string
	// onExit, if set, is called when a process ends, by itself or killed;
	// stopping says that stopAll asked them all to stop.
	onExit func(id int32, err error, stopping bool)

	mu       sync.Mutex
	procs    map[int32]*brokerProcess // the running ones
	stopping bool
	wg       sync.WaitGroup
}

// brokerProcess is one running broker process.
type brokerProcess struct {
	cmd    *exec.Cmd
	paused bool
	exited chan struct{} // closed once it has exited and been waited for
}

func newBrokerProcesses(self string, args [][]string) *brokerProcesses {
	return &brokerProcesses{self: self, args: args, procs: map[int32]*brokerProcess{}}
}

// start starts broker id's process, with its command line.
func (bp *brokerProcesses) start(id int32) (pid int, err error) {
	bp.mu.Lock()
	defer bp.mu.Unlock()
	if id < 1 || int(id) > len(bp.args) {
		return 0, fmt.Errorf("no broker %d in this cluster", id)
	}
	if bp.stopping {
		return 0, errors.New("the cluster is stopping")
	}
	if bp.procs[id] != nil {
		return 0, fmt.Errorf("broker %d is running", id)
	}
	cmd := exec.Command(bp.self, bp.args[id-1]...)
	var out io.ReadCloser
	if bp.logDir != "" {
		log, err := os.OpenFile(filepath.Join(bp.logDir, fmt.Sprintf("broker-%d.log", id)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
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
	p := &brokerProcess{cmd: cmd, exited: make(chan struct{})}
	bp.procs[id] = p
	bp.wg.Add(1)
	go func() {
		defer bp.wg.Done()
		if out != nil {
			prefix(out, fmt.Sprintf("[broker %d] ", id))
		}
		err := cmd.Wait()
		bp.mu.Lock()
		delete(bp.procs, id)
		stopping := bp.stopping
		bp.mu.Unlock()
		close(p.exited)
		if bp.onExit != nil {
			bp.onExit(id, err, stopping)
		}
	}()
	return cmd.Process.Pid, nil
}

// signal sends broker id's process a signal, and returns its pid and a
// channel closed when it has exited.
func (bp *brokerProcesses) signal(id int32, sig syscall.Signal) (pid int, exited <-chan struct{}, err error) {
	bp.mu.Lock()
	defer bp.mu.Unlock()
	p := bp.procs[id]
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

// running returns broker id's running process, or nil.
func (bp *brokerProcesses) running(id int32) *brokerProcess {
	bp.mu.Lock()
	defer bp.mu.Unlock()
	return bp.procs[id]
}

// kill sends broker id's process SIGKILL (no goodbye, no flush) and waits
// until it has exited; it returns its pid.
func (bp *brokerProcesses) kill(id int32) (pid int, err error) {
	pid, exited, err := bp.signal(id, syscall.SIGKILL)
	if err != nil {
		return 0, err
	}
	<-exited
	return pid, nil
}

// Act is the console's classroom controls (console.Controls).
func (bp *brokerProcesses) Act(id int32, action string) error {
	var pid int
	var err error
	switch action {
	case "start":
		pid, err = bp.start(id)
	case "stop":
		pid, _, err = bp.signal(id, syscall.SIGTERM)
	case "kill":
		pid, _, err = bp.signal(id, syscall.SIGKILL)
	case "pause":
		pid, _, err = bp.signal(id, syscall.SIGSTOP)
	case "resume":
		pid, _, err = bp.signal(id, syscall.SIGCONT)
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
func (bp *brokerProcesses) Processes() map[int32]string {
	bp.mu.Lock()
	defer bp.mu.Unlock()
	out := map[int32]string{}
	for i := range bp.args {
		id := int32(i + 1)
		switch p := bp.procs[id]; {
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

// stopAll asks every broker to stop (SIGTERM: a controlled shutdown) and
// kills those still running after grace.
func (bp *brokerProcesses) stopAll(grace time.Duration) {
	bp.mu.Lock()
	bp.stopping = true
	for _, p := range bp.procs {
		if p.paused {
			p.cmd.Process.Signal(syscall.SIGCONT)
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	bp.mu.Unlock()
	done := make(chan struct{})
	go func() { bp.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		bp.mu.Lock()
		for _, p := range bp.procs { // those still running, whenever started
			p.cmd.Process.Kill()
		}
		bp.mu.Unlock()
		<-done
	}
}
