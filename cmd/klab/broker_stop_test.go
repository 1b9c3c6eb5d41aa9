package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"klab.dev/klab/admin"
	"klab.dev/klab/cmd/klab/internal/brokerproc"
)

// TestBrokerStopStopsABrokerProcessCleanly runs three `klab broker`
// processes, as `klab cluster` does, and stops two of them with `klab
// broker stop`: one found in the cluster's layout (<dir>/broker-N), one by
// its own data directory.
func TestBrokerStopStopsABrokerProcessCleanly(t *testing.T) {
	bin := buildKlab(t)
	dir := t.TempDir()
	c, err := brokerproc.StartLoopback(bin, dir, 3)
	require.NoError(t, err)
	t.Cleanup(c.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	require.NoError(t, c.WaitBrokers(ctx))
	adm := admin.New(admin.Options{Bootstrap: c.Addrs})
	defer adm.Close()
	_, err = adm.CreateTopics(ctx, admin.NewTopic{Name: "orders", Partitions: 6, ReplicationFactor: 3})
	require.NoError(t, err)

	pidFile := filepath.Join(dir, "broker-2", brokerPidFile)
	pid, err := os.ReadFile(pidFile)
	require.NoError(t, err, "a running broker has its pid file")
	running, exited, ok := c.Running(2)
	require.True(t, ok)
	assert.Equal(t, strconv.Itoa(running)+"\n", string(pid))

	bs := "--bootstrap-server=" + c.Addrs[0]
	out, err := capture(t, func() error { return runBrokerStop([]string{"--id", "2", "--dir", dir, bs}) })
	require.NoError(t, err)
	t.Logf("klab broker stop printed:\n%s", out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	assert.Equal(t, "sent SIGTERM to broker 2 (pid "+strings.TrimSpace(string(pid))+")", lines[0])
	assert.True(t, strings.HasPrefix(lines[len(lines)-1], "broker 2 stopped (in "), out)
	<-exited
	assert.NoFileExists(t, pidFile, "a broker that stopped cleanly removes its pid file")

	_, err = capture(t, func() error { return runBrokerStop([]string{"--id", "2", "--dir", dir, bs}) })
	assert.ErrorContains(t, err, "broker 2 is not running: no klab-broker.pid in "+filepath.Join(dir, "broker-2"))

	// Broker 1's own data directory, as `klab broker --dir` was given it.
	_, exited, ok = c.Running(1)
	require.True(t, ok)
	out, err = capture(t, func() error {
		return runBrokerStop([]string{"--id", "1", "--dir", filepath.Join(dir, "broker-1"), "--bootstrap-server=" + c.Addrs[2]})
	})
	require.NoError(t, err)
	assert.Contains(t, out, "broker 1 stopped")
	<-exited
}

func TestBrokerStopRefusesAPidThatIsNotABroker(t *testing.T) {
	// A broker killed with -9 leaves its pid file; here the pid is this
	// test's own process, which is no broker and must not get SIGTERM.
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "broker-4"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "broker-4", brokerPidFile), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644))
	_, err := capture(t, func() error { return runBrokerStop([]string{"--id", "4", "--dir", dir}) })
	assert.ErrorContains(t, err, "is not a klab broker")
}

func TestBrokerStopProgressCountsThePartitionsItLeads(t *testing.T) {
	bs := startAdminBroker(t) // orders, two partitions, both led by broker 1
	adm := admin.New(admin.Options{Bootstrap: []string{strings.TrimPrefix(bs, "--bootstrap-server=")}})
	defer adm.Close()
	assert.Equal(t, "broker 1 is moving leadership of 2 partitions…", shutdownProgress(adm, 1))
	assert.Equal(t, "broker 2 leads no partitions; it is closing its logs and connections…", shutdownProgress(adm, 2))

	gone := admin.New(admin.Options{Bootstrap: []string{"127.0.0.1:1"}})
	defer gone.Close()
	assert.Equal(t, "broker 1 is shutting down…", shutdownProgress(gone, 1), "no metadata: no count")
}
