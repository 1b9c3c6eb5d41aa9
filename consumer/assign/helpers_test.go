package assign

// mem is a dynamic member with no owned partitions.
func mem(id string, topics ...string) Member {
	return Member{ID: id, Topics: topics, Generation: -1}
}

// static is a static member: member id and group.instance.id.
func static(id, instance string, topics ...string) Member {
	m := mem(id, topics...)
	m.InstanceID = instance
	return m
}

// tps is a shorthand for one member's share: tps("t0", 0, 1, "t1", 2)
// is t0 [0 1], t1 [2].
func tps(args ...any) map[string][]int32 {
	out := map[string][]int32{}
	var topic string
	for _, a := range args {
		switch v := a.(type) {
		case string:
			topic = v
			out[topic] = []int32{}
		case int:
			out[topic] = append(out[topic], int32(v))
		}
	}
	for t, ps := range out {
		if len(ps) == 0 {
			delete(out, t)
		}
	}
	return out
}
