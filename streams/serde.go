package streams

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
)

// Serde turns values of type T into the bytes of a record's key or value
// and back, as Kafka's Serde<T> pairs a Serializer and a Deserializer. The
// topic is the one the bytes are written to or read from (a changelog's,
// for a store). Nil bytes are a record without a key, or a tombstone: they
// never reach Deserialize (the record's Key or Value is then nil).
type Serde[T any] struct {
	Serialize   func(topic string, v T) ([]byte, error)
	Deserialize func(topic string, b []byte) (T, error)
}

// Encode is Serialize for a value of unknown type, as the processor API
// holds keys and values: a nil v is nil bytes, and a v that is not a T is
// an error naming both types.
func (s Serde[T]) Encode(topic string, v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	t, ok := v.(T)
	if !ok {
		var want T
		return nil, fmt.Errorf("serde for %T got a %T (topic %s): give the operator serdes for its types", want, v, topic)
	}
	return s.Serialize(topic, t)
}

// Decode is Deserialize for the processor API: nil bytes are nil.
func (s Serde[T]) Decode(topic string, b []byte) (any, error) {
	if b == nil {
		return nil, nil
	}
	return s.Deserialize(topic, b)
}

// set says whether the serde was given: a zero Serde is "not said", and
// the DSL then uses the one it knows from upstream.
func (s Serde[T]) set() bool { return s.Serialize != nil && s.Deserialize != nil }

// AnySerde is a serde as the processor API uses one, for values of any
// type: every Serde[T] is one.
type AnySerde interface {
	Encode(topic string, v any) ([]byte, error)
	Decode(topic string, b []byte) (any, error)
}

// Bytes passes bytes through, as Kafka's ByteArraySerde.
var Bytes = Serde[[]byte]{
	Serialize:   func(_ string, v []byte) ([]byte, error) { return v, nil },
	Deserialize: func(_ string, b []byte) ([]byte, error) { return b, nil },
}

// String is UTF-8 text, as Kafka's StringSerde.
var String = Serde[string]{
	Serialize:   func(_ string, v string) ([]byte, error) { return []byte(v), nil },
	Deserialize: func(_ string, b []byte) (string, error) { return string(b), nil },
}

// Int64 is eight bytes, big-endian, as Kafka's LongSerde: what kcat -s
// value=q and the Java console consumer's LongDeserializer read.
var Int64 = Serde[int64]{
	Serialize: func(_ string, v int64) ([]byte, error) {
		return binary.BigEndian.AppendUint64(nil, uint64(v)), nil
	},
	Deserialize: func(topic string, b []byte) (int64, error) {
		if len(b) != 8 {
			return 0, fmt.Errorf("int64 serde: %d bytes in topic %s, want 8", len(b), topic)
		}
		return int64(binary.BigEndian.Uint64(b)), nil
	},
}

// JSON is T as JSON (encoding/json), as Kafka's JsonSerde in Spring and
// Confluent's libraries.
func JSON[T any]() Serde[T] {
	return Serde[T]{
		Serialize: func(_ string, v T) ([]byte, error) { return json.Marshal(v) },
		Deserialize: func(topic string, b []byte) (T, error) {
			var v T
			if err := json.Unmarshal(b, &v); err != nil {
				return v, fmt.Errorf("json serde, topic %s: %w", topic, err)
			}
			return v, nil
		},
	}
}
