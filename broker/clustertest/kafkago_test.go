package clustertest_test

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"klab.dev/klab/broker/clustertest"
)

// TestKafkaGoAdministersFromAnyBroker: kafka-go's Conn sends CreateTopics,
// CreatePartitions and DeleteTopics to the broker it is connected to,
// whichever that is, with its default settings. Every broker must take
// them — passing them on to the active controller (KIP-590) — and the
// topic must be there, on that broker, when it answers.
func TestKafkaGoAdministersFromAnyBroker(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, id := range c.IDs() {
		topic := "kafka-go-" + strconv.Itoa(int(id))
		conn, err := kafka.DialContext(ctx, "tcp", c.Addr(id))
		require.NoError(t, err)
		defer conn.Close()
		require.NoError(t, conn.CreateTopics(kafka.TopicConfig{Topic: topic, NumPartitions: 2, ReplicationFactor: 3}),
			"CreateTopics sent to broker %d (controller %d)", id, c.Broker(id).ActiveController())
		parts, err := conn.ReadPartitions(topic)
		require.NoError(t, err)
		require.Len(t, parts, 2, "broker %d lists the topic it just created", id)

		client := &kafka.Client{Addr: kafka.TCP(c.Addr(id))}
		_, err = client.CreatePartitions(ctx, &kafka.CreatePartitionsRequest{
			Addr:   &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port(t, c.Addr(id))},
			Topics: []kafka.TopicPartitionsConfig{{Name: topic, Count: 3}},
		})
		require.NoError(t, err)

		require.NoError(t, conn.DeleteTopics(topic), "DeleteTopics sent to broker %d", id)
		_, ok := c.Partition(id, topic, 0)
		require.False(t, ok, "broker %d has deleted the topic when it answers", id)
	}
}

func port(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	n, err := strconv.Atoi(p)
	require.NoError(t, err)
	return n
}
