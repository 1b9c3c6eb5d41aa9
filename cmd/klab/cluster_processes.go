package main

import (
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"time"
)

// brokerProcesses are the `klab broker` child processes of `klab cluster`:
// started, stopped, paused and started again, from the terminal (Ctrl-C
// stops them all) or from the console's classroom controls.
type brokerProcesses struct {
	self    string     // the klab binary
	restart string     // how to run it again from a shell, for the messages
	args    [][]string // each broker's command line, by broker index
	// onExit is called when a process ends by itself or is killed; stopping
	// is true once Ctrl-C has asked them all to stop.
	onExit func(index int, err error, stopping bool)

	mu       sync.Mutex
	procs    []*exec.Cmd // nil when not running
	paused   []bool
	stopping bool
	wg       sync.WaitGroup
}

func newBrokerProcesses(self, restart string, args [][]string, onExit func(int, error, bool)) *brokerProcesses {
	return &brokerProcesses{self: self, restart: restart, args: args, onExit: onExit,
		procs: make([]*exec.Cmd, len(args)), paused: make([]bool, len(args))}
}

// start starts broker i (0-based), with its output prefixed.
func (bp *brokerProcesses) start(i int) (pid int, err error) {
	bp.mu.Lock()
	defer bp.mu.Unlock()
	if bp.stopping {
		return 0, errors.New("the cluster is stopping")
	}
	if bp.procs[i] != nil {
		return 0, fmt.Errorf("broker %d is running", i+1)
	}
	cmd := exec.Command(bp.self, bp.args[i]...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	bp.procs[i], bp.paused[i] = cmd, false
	bp.wg.Add(1)
	go func() {
		defer bp.wg.Done()
		prefix(out, fmt.Sprintf("[broker %d] ", i+1))
		err := cmd.Wait()
		bp.mu.Lock()
		bp.procs[i], bp.paused[i] = nil, false
		stopping := bp.stopping
		bp.mu.Unlock()
		bp.onExit(i, err, stopping)
	}()
	return cmd.Process.Pid, nil
}

// Act is the console's classroom controls (console.Controls).
func (bp *brokerProcesses) Act(id int32, action string) error {
	i := int(id) - 1
	if i < 0 || i >= len(bp.args) {
		return fmt.Errorf("no broker %d in this cluster", id)
	}
	if action == "start" {
		_, err := bp.start(i)
		return err
	}
	signals := map[string]syscall.Signal{"stop": syscall.SIGTERM, "kill": syscall.SIGKILL, "pause": syscall.SIGSTOP, "resume": syscall.SIGCONT}
	sig, ok := signals[action]
	if !ok {
		return fmt.Errorf("unknown action %q: stop, kill, pause, resume or start", action)
	}
	bp.mu.Lock()
	defer bp.mu.Unlock()
	p := bp.procs[i]
	if p == nil {
		return fmt.Errorf("broker %d is not running", id)
	}
	if bp.paused[i] && sig == syscall.SIGTERM {
		// A stopped process would not act on SIGTERM until resumed.
		p.Process.Signal(syscall.SIGCONT)
	}
	if err := p.Process.Signal(sig); err != nil {
		return err
	}
	switch sig {
	case syscall.SIGSTOP:
		bp.paused[i] = true
	case syscall.SIGCONT, syscall.SIGTERM:
		bp.paused[i] = false
	}
	fmt.Printf("[console] broker %d: %s (pid %d)\n", id, action, p.Process.Pid)
	return nil
}

// Processes is each broker process's state (console.Controls).
func (bp *brokerProcesses) Processes() map[int32]string {
	bp.mu.Lock()
	defer bp.mu.Unlock()
	out := map[int32]string{}
	for i, p := range bp.procs {
		switch {
		case p == nil:
			out[int32(i+1)] = "stopped"
		case bp.paused[i]:
			out[int32(i+1)] = "paused"
		default:
			out[int32(i+1)] = "running"
		}
	}
	return out
}

// stopAll asks every broker to stop (SIGTERM: a controlled shutdown) and
// kills those still running after grace.
func (bp *brokerProcesses) stopAll(grace time.Duration) {
	bp.mu.Lock()
	bp.stopping = true
	running := slices.DeleteFunc(slices.Clone(bp.procs), func(p *exec.Cmd) bool { return p == nil })
	for i, p := range bp.procs {
		if p != nil && bp.paused[i] {
			p.Process.Signal(syscall.SIGCONT)
		}
	}
	bp.mu.Unlock()
	for _, p := range running {
		p.Process.Signal(syscall.SIGTERM)
	}
	done := make(chan struct{})
	go func() { bp.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		for _, p := range running {
			p.Process.Kill()
		}
		<-done
	}
}
