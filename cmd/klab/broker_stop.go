package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"klab.dev/klab/admin"
)

// brokerPidFile is the file, in a broker's data directory, that holds the
// pid of the `klab broker` process running on it.
const brokerPidFile = "klab-broker.pid"

// runBrokerCommand is `klab broker`: `klab broker stop ...` stops a
// running broker, anything else runs one.
func runBrokerCommand(args []string) error {
	if len(args) > 0 && args[0] == "stop" {
		return runBrokerStop(args[1:])
	}
	return runBroker(args)
}

// runBrokerStop is kafka-server-stop.sh: it sends a running broker SIGTERM,
// which makes it shut down under control (its partitions' leadership moved
// to other replicas first, its logs flushed), and waits until it has
// exited.
func runBrokerStop(args []string) error {
	fs := flag.NewFlagSet("broker stop", flag.ContinueOnError)
	id := fs.Int("id", 0, "node.id of the broker to stop")
	dir := fs.String("dir", "klab-data", "the data directory: klab cluster's --dir (the broker's is <dir>/broker-N), or the broker's own --dir")
	bootstrap := fs.String("bootstrap-server", "127.0.0.1:9092", "brokers to ask, host:port, comma-separated, for the progress of the shutdown")
	timeout := fs.Duration("timeout", 60*time.Second, "how long to wait for the broker to exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *id <= 0 {
		return errors.New("--id is required: the node.id of the broker to stop")
	}
	pidFile, pid, err := findBrokerPid(*dir, int32(*id))
	if err != nil {
		return err
	}
	if !processAlive(pid) {
		return fmt.Errorf("broker %d is not running: pid %d, from %s, has exited", *id, pid, pidFile)
	}
	if !isBrokerProcess(pid) {
		return fmt.Errorf("pid %d, from %s, is not a klab broker: the broker died without removing its pid file, and the pid went to another process; remove %s", pid, pidFile, pidFile)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("stopping broker %d (pid %d): %w", *id, pid, err)
	}
	fmt.Printf("sent SIGTERM to broker %d (pid %d)\n", *id, pid)
	adm := admin.New(admin.Options{Bootstrap: strings.Split(*bootstrap, ","), Timeout: time.Second})
	defer adm.Close()
	took, err := waitForExit(pid, *timeout, func() string { return shutdownProgress(adm, int32(*id)) })
	if err != nil {
		return err
	}
	fmt.Printf("broker %d stopped (in %.1fs)\n", *id, took.Seconds())
	return nil
}

// findBrokerPid reads broker id's pid file: in <dir>/broker-N, where
// `klab cluster` puts broker N, or in dir itself when dir is broker N's
// own data directory (its meta.properties says node.id=N).
func findBrokerPid(dir string, id int32) (path string, pid int, err error) {
	candidates := []string{filepath.Join(dir, "broker-"+strconv.Itoa(int(id)), brokerPidFile)}
	if nodeIDOf(dir) == id {
		candidates = append(candidates, filepath.Join(dir, brokerPidFile))
	}
	for _, path := range candidates {
		b, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", 0, err
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 {
			return "", 0, fmt.Errorf("%s does not hold a pid: %q", path, b)
		}
		return path, pid, nil
	}
	return "", 0, fmt.Errorf("broker %d is not running: no %s in %s (a broker started with `klab broker` writes it there, and removes it when it stops)",
		id, brokerPidFile, strings.Join(dirsOf(candidates), " or "))
}

func dirsOf(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.Dir(p)
	}
	return out
}

// nodeIDOf is the node.id in a data directory's meta.properties, or -1.
func nodeIDOf(dir string) int32 {
	b, err := os.ReadFile(filepath.Join(dir, "meta.properties"))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "node.id="); ok {
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
				return int32(n)
			}
		}
	}
	return -1
}

// processAlive reports whether a process runs: signal 0 checks that it
// exists without sending anything. A zombie (exited, not yet reaped by its
// parent) exists but is not running; Linux's /proc says which it is.
func processAlive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true // no /proc (macOS): the signal said it exists
	}
	// The state follows the command name, which is in parentheses.
	if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z'
	}
	return true
}

// isBrokerProcess reports whether pid runs `klab broker`, as far as
// Linux's /proc tells: a broker killed with -9 leaves its pid file behind,
// and its pid may since have gone to another process, which must not get
// the signal. Without /proc (macOS) it cannot tell, and trusts the file.
func isBrokerProcess(pid int) bool {
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return true
	}
	args := strings.Split(string(cmdline), "\x00")
	return len(args) > 1 && args[1] == "broker"
}

// waitForExit waits until the process has exited, printing progress()
// every second, and returns how long it took, or fails after timeout.
func waitForExit(pid int, timeout time.Duration, progress func() string) (time.Duration, error) {
	start := time.Now()
	deadline := start.Add(timeout)
	nextReport := start.Add(time.Second)
	for processAlive(pid) {
		now := time.Now()
		if now.After(deadline) {
			return 0, fmt.Errorf("pid %d has not exited after %v; `kill -9 %d` stops it at once, as a crash would", pid, timeout, pid)
		}
		if now.After(nextReport) {
			fmt.Println(progress())
			nextReport = nextReport.Add(time.Second)
		}
		time.Sleep(50 * time.Millisecond) // polling a process we cannot wait on: it is not our child
	}
	return time.Since(start), nil
}

// shutdownProgress is one line on where a stopping broker is: how many
// partitions it still leads, from Metadata, which moves as the controller
// gives them to other replicas.
func shutdownProgress(adm *admin.Client, id int32) string {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	topics, err := adm.DescribeTopics(ctx)
	if err != nil {
		return fmt.Sprintf("broker %d is shutting down…", id)
	}
	led := 0
	for _, t := range topics {
		for _, p := range t.Partitions {
			if p.Leader == id {
				led++
			}
		}
	}
	if led == 0 {
		return fmt.Sprintf("broker %d leads no partitions; it is closing its logs and connections…", id)
	}
	return fmt.Sprintf("broker %d is moving leadership of %d partitions…", id, led)
}
