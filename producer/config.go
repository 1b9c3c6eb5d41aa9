package producer

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"klab.dev/klab/broker/compress"
)

// Config is a producer's configuration. Set takes the Java client's names.
type Config struct {
	// BootstrapServers is bootstrap.servers: where the producer first asks
	// for metadata. It need not list every broker.
	BootstrapServers []string
	// ClientID is client.id, sent with every request.
	ClientID string
	// Acks is acks: 0 (no answer), 1 (the leader has it) or -1 (all: every
	// in-sync replica has it).
	Acks int16
	// BatchSize is batch.size: a batch is sent once it holds this many
	// bytes, whatever linger.ms says.
	BatchSize int
	// Linger is linger.ms: how long a batch waits for more records.
	Linger time.Duration
	// Compression is compression.type.
	Compression compress.Codec
	// Retries is retries: how many times a batch is sent again after a
	// retriable error, within DeliveryTimeout.
	Retries int
	// RetryBackoff is retry.backoff.ms.
	RetryBackoff time.Duration
	// DeliveryTimeout is delivery.timeout.ms: how long a record may take,
	// from Send to its answer, retries included.
	DeliveryTimeout time.Duration
	// RequestTimeout is request.timeout.ms: how long one request may take.
	RequestTimeout time.Duration
	// MaxInFlight is max.in.flight.requests.per.connection.
	MaxInFlight int
	// BufferMemory is buffer.memory: the bytes of records waiting to be
	// sent; Send blocks while it is full.
	BufferMemory int
	// MaxBlock is max.block.ms: how long Send may block for metadata or
	// buffer space.
	MaxBlock time.Duration
	// MetadataMaxAge is metadata.max.age.ms: how often metadata is
	// refreshed even without an error, so that new partitions are seen.
	MetadataMaxAge time.Duration
}

// DefaultConfig is the Java client's defaults, as of Kafka 4.0 (whose
// linger.ms default is 5), without idempotence (lesson 09).
func DefaultConfig() Config {
	return Config{
		BootstrapServers: []string{"127.0.0.1:9092"},
		ClientID:         "klab-producer",
		Acks:             -1,
		BatchSize:        16384,
		Linger:           5 * time.Millisecond,
		Compression:      compress.None,
		Retries:          math.MaxInt32,
		RetryBackoff:     100 * time.Millisecond,
		DeliveryTimeout:  120 * time.Second,
		RequestTimeout:   30 * time.Second,
		MaxInFlight:      5,
		BufferMemory:     32 << 20,
		MaxBlock:         60 * time.Second,
		MetadataMaxAge:   5 * time.Minute,
	}
}

// Set applies one setting by the Java client's name for it.
func (c *Config) Set(name, value string) error {
	value = strings.TrimSpace(value)
	ms := func(dst *time.Duration) error {
		n, err := strconv.ParseInt(value, 10, 64)
		*dst = time.Duration(n) * time.Millisecond
		return err
	}
	num := func(dst *int) error {
		n, err := strconv.Atoi(value)
		*dst = n
		return err
	}
	var err error
	switch name {
	case "bootstrap.servers":
		c.BootstrapServers = strings.Split(value, ",")
	case "client.id":
		c.ClientID = value
	case "acks":
		switch value {
		case "all", "-1":
			c.Acks = -1
		case "0", "1":
			c.Acks = int16(value[0] - '0')
		default:
			err = fmt.Errorf("want 0, 1, all or -1")
		}
	case "batch.size":
		err = num(&c.BatchSize)
	case "linger.ms":
		err = ms(&c.Linger)
	case "compression.type":
		c.Compression, err = compress.Parse(value)
	case "retries":
		err = num(&c.Retries)
	case "retry.backoff.ms":
		err = ms(&c.RetryBackoff)
	case "delivery.timeout.ms":
		err = ms(&c.DeliveryTimeout)
	case "request.timeout.ms":
		err = ms(&c.RequestTimeout)
	case "max.in.flight.requests.per.connection":
		err = num(&c.MaxInFlight)
	case "buffer.memory":
		err = num(&c.BufferMemory)
	case "max.block.ms":
		err = ms(&c.MaxBlock)
	case "metadata.max.age.ms":
		err = ms(&c.MetadataMaxAge)
	case "enable.idempotence":
		if value == "true" {
			err = fmt.Errorf("the idempotent producer arrives in lesson 09")
		}
	default:
		return fmt.Errorf("unknown producer config %q", name)
	}
	if err != nil {
		return fmt.Errorf("%s=%s: %w", name, value, err)
	}
	return nil
}

func (c Config) validate() error {
	switch {
	case len(c.BootstrapServers) == 0:
		return fmt.Errorf("bootstrap.servers is empty")
	case c.BatchSize <= 0:
		return fmt.Errorf("batch.size must be positive")
	case c.MaxInFlight <= 0:
		return fmt.Errorf("max.in.flight.requests.per.connection must be positive")
	case c.BufferMemory < c.BatchSize:
		return fmt.Errorf("buffer.memory must hold at least one batch")
	}
	return nil
}
