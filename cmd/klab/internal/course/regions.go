// Package course is the machinery behind `klab course`: it finds the lesson
// regions marked in the reference code, generates each lesson's exercise
// and solution from them, reports a student's progress, and checks the
// course's invariants for CI.
//
// A region in the reference code looks like this:
//
//	func (s *segment) append(...) error {
//		//klab:lesson 01 begin (*segment).append
//		... the reference implementation ...
//		//klab:lesson 01 stub
//		// return lessons.Todo("01", "(*segment).append")
//		//klab:lesson 01 end
//	}
//
// The exercise of lesson 01 gets the stub (uncommented) in place of the
// region; its solution, and every other lesson's copy, get the reference
// implementation. The markers never reach a generated file.
package course

import (
	"fmt"
	"regexp"
	"strings"

	"klab.dev/klab/lessons"
)

// Region is one marked piece of a lesson in a reference file.
type Region struct {
	Lesson string // "01"
	Name   string // what the student writes, "(*segment).append"
	File   string // the reference file, relative to the repository root
	Line   int    // of the begin marker, 1-based
}

var marker = regexp.MustCompile(`^\s*//klab:lesson (\d\d) (begin|stub|end)\s*(.*)$`)

// render returns src with every region resolved: the stub for regions of
// lesson exercise, the reference code for all others. An empty exercise
// resolves every region to its reference code. It also returns the regions
// it found, and an error for malformed markers.
func render(file string, src []byte, exercise string) ([]byte, []Region, error) {
	var out strings.Builder
	var regions []Region
	var open *Region
	state := "" // "", "begin" (in reference code) or "stub"
	lines := strings.SplitAfter(string(src), "\n")
	for i, line := range lines {
		m := marker.FindStringSubmatch(strings.TrimRight(line, "\r\n"))
		if m == nil {
			switch {
			case state == "":
				out.WriteString(line)
			case state == "begin" && open.Lesson != exercise:
				out.WriteString(line)
			case state == "stub" && open.Lesson == exercise:
				code, ok := uncomment(line)
				if !ok {
					return nil, nil, fmt.Errorf("%s:%d: stub lines must be // comments", file, i+1)
				}
				out.WriteString(code)
			}
			continue
		}
		number, kind, name := m[1], m[2], strings.TrimSpace(m[3])
		if _, ok := lessons.Find(number); !ok {
			return nil, nil, fmt.Errorf("%s:%d: marker for lesson %s, which is not in lessons.All", file, i+1, number)
		}
		switch {
		case kind == "begin" && state == "":
			if name == "" {
				return nil, nil, fmt.Errorf("%s:%d: a begin marker names what the student writes", file, i+1)
			}
			regions = append(regions, Region{Lesson: number, Name: name, File: file, Line: i + 1})
			open = &regions[len(regions)-1]
			state = "begin"
			if number == exercise {
				indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
				l, _ := lessons.Find(number)
				fmt.Fprintf(&out, "%s// TODO(lesson %s): write %s. See %s.\n", indent, number, name, l.README())
			}
		case kind == "stub" && state == "begin" && number == open.Lesson:
			state = "stub"
		case kind == "end" && state == "stub" && number == open.Lesson:
			state, open = "", nil
		default:
			return nil, nil, fmt.Errorf("%s:%d: unexpected %q marker (regions go begin, stub, end, and do not nest)", file, i+1, kind)
		}
	}
	if state != "" {
		return nil, nil, fmt.Errorf("%s:%d: region %s is never closed", file, open.Line, open.Name)
	}
	return []byte(out.String()), regions, nil
}

// uncomment turns a stub line "\t// return x" into "\treturn x".
func uncomment(line string) (string, bool) {
	body := strings.TrimLeft(line, " \t")
	indent := line[:len(line)-len(body)]
	if !strings.HasPrefix(body, "//") {
		return "", false
	}
	body = strings.TrimPrefix(body, "//")
	body = strings.TrimPrefix(body, " ")
	return indent + body, true
}
