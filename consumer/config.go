package consumer

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Config is a consumer's configuration. Set takes the Java client's names.
type Config struct {
	// BootstrapServers is bootstrap.servers.
	BootstrapServers []string
	// ClientID is client.id.
	ClientID string
	// AutoOffsetReset is auto.offset.reset: where to start a partition with
	// no valid position: "earliest", "latest" or "none" (Poll fails).
	AutoOffsetReset string
	// FetchMinBytes is fetch.min.bytes: the broker waits for this much data.
	FetchMinBytes int32
	// FetchMaxWait is fetch.max.wait.ms: how long it waits for it.
	FetchMaxWait time.Duration
	// FetchMaxBytes is fetch.max.bytes: the most one Fetch answer holds.
	FetchMaxBytes int32
	// MaxPartitionFetchBytes is max.partition.fetch.bytes: the most one
	// partition gives to one Fetch (but always one whole batch).
	MaxPartitionFetchBytes int32
	// MaxPollRecords is max.poll.records: the most records one Poll returns.
	MaxPollRecords int
	// RequestTimeout is request.timeout.ms.
	RequestTimeout time.Duration
	// RetryBackoff is retry.backoff.ms, between attempts after an error.
	RetryBackoff time.Duration
}

// DefaultConfig is the Java client's defaults.
func DefaultConfig() Config {
	return Config{
		BootstrapServers:       []string{"127.0.0.1:9092"},
		ClientID:               "klab-consumer",
		AutoOffsetReset:        "latest",
		FetchMinBytes:          1,
		FetchMaxWait:           500 * time.Millisecond,
		FetchMaxBytes:          50 << 20,
		MaxPartitionFetchBytes: 1 << 20,
		MaxPollRecords:         500,
		RequestTimeout:         30 * time.Second,
		RetryBackoff:           100 * time.Millisecond,
	}
}

// Set applies one setting by the Java client's name for it.
func (c *Config) Set(name, value string) error {
	value = strings.TrimSpace(value)
	i32 := func(dst *int32) error {
		n, err := strconv.ParseInt(value, 10, 32)
		*dst = int32(n)
		return err
	}
	ms := func(dst *time.Duration) error {
		n, err := strconv.ParseInt(value, 10, 64)
		*dst = time.Duration(n) * time.Millisecond
		return err
	}
	var err error
	switch name {
	case "bootstrap.servers":
		c.BootstrapServers = strings.Split(value, ",")
	case "client.id":
		c.ClientID = value
	case "auto.offset.reset":
		if value != "earliest" && value != "latest" && value != "none" {
			err = fmt.Errorf("want earliest, latest or none")
		}
		c.AutoOffsetReset = value
	case "fetch.min.bytes":
		err = i32(&c.FetchMinBytes)
	case "fetch.max.wait.ms":
		err = ms(&c.FetchMaxWait)
	case "fetch.max.bytes":
		err = i32(&c.FetchMaxBytes)
	case "max.partition.fetch.bytes":
		err = i32(&c.MaxPartitionFetchBytes)
	case "max.poll.records":
		c.MaxPollRecords, err = strconv.Atoi(value)
	case "request.timeout.ms":
		err = ms(&c.RequestTimeout)
	case "retry.backoff.ms":
		err = ms(&c.RetryBackoff)
	case "group.id", "enable.auto.commit":
		err = fmt.Errorf("consumer groups arrive in lesson 10")
	default:
		return fmt.Errorf("unknown consumer config %q", name)
	}
	if err != nil {
		return fmt.Errorf("%s=%s: %w", name, value, err)
	}
	return nil
}
