package course

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"klab.dev/klab/lessons"
)

// A lesson's hints live in lessons/NN-slug/HINTS.md, a section per region
// and, within it, numbered levels that go from the idea to near-code:
//
//	## (*segment).find
//	### 1. The idea
//	...
//	### 2. The approach
//	...
//	### 3. Nearly code
//	...
//
// `klab course hint NN` shows the next level of each region the student
// asks about, so a student reads no more of the answer than they need.

// Hint is one level of help with one region.
type Hint struct {
	Region string
	Level  int
	Title  string
	Text   string
}

var (
	hintRegion = regexp.MustCompile(`^## (.+)$`)
	hintLevel  = regexp.MustCompile(`^### (\d+)\.?\s*(.*)$`)
)

// HintsFile is the path of lesson l's hints from the repository root.
func HintsFile(l lessons.Lesson) string { return "lessons/" + l.Dir() + "/HINTS.md" }

// LoadHints reads lesson l's hints, by region, each region's levels in order.
func (c *Course) LoadHints(l lessons.Lesson) (map[string][]Hint, error) {
	f, err := os.Open(filepath.Join(c.Root, HintsFile(l)))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	hints := map[string][]Hint{}
	var region string
	var cur *Hint
	flush := func() {
		if cur != nil {
			cur.Text = strings.TrimSpace(cur.Text)
			hints[cur.Region] = append(hints[cur.Region], *cur)
			cur = nil
		}
	}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if m := hintRegion.FindStringSubmatch(line); m != nil {
			flush()
			region = strings.TrimSpace(m[1])
			continue
		}
		if m := hintLevel.FindStringSubmatch(line); m != nil {
			flush()
			if region == "" {
				return nil, fmt.Errorf("%s:%d: a hint level outside a ## region section", HintsFile(l), n)
			}
			level, _ := strconv.Atoi(m[1])
			if want := len(hints[region]) + 1; level != want {
				return nil, fmt.Errorf("%s:%d: hint level %d of %s, want %d", HintsFile(l), n, level, region, want)
			}
			cur = &Hint{Region: region, Level: level, Title: strings.TrimSpace(m[2])}
			continue
		}
		if cur != nil {
			cur.Text += line + "\n"
		}
	}
	flush()
	return hints, sc.Err()
}

// checkHints verifies that every region of lesson l has hints in at least
// two levels, and that every hint names a region of the lesson.
func (c *Course) checkHints(l lessons.Lesson) error {
	hints, err := c.LoadHints(l)
	if err != nil {
		return err
	}
	var problems []string
	for _, r := range c.RegionsOf(l.Number) {
		if len(hints[r.Name]) < 2 {
			problems = append(problems, fmt.Sprintf("region %s has %d hint levels, want at least 2 (the idea, then the approach)", r.Name, len(hints[r.Name])))
		}
	}
	for name := range hints {
		if !c.hasRegion(l, name) {
			problems = append(problems, fmt.Sprintf("hints for %q, which is no region of lesson %s", name, l.Number))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s:\n  %s", HintsFile(l), strings.Join(problems, "\n  "))
	}
	return nil
}

func (c *Course) hasRegion(l lessons.Lesson, name string) bool {
	for _, r := range c.RegionsOf(l.Number) {
		if r.Name == name {
			return true
		}
	}
	return false
}

// ShowHint writes the next hint for each region of lesson l whose name
// contains about (every region if about is empty), or the given level if
// level > 0, and remembers what it showed.
func (c *Course) ShowHint(w io.Writer, l lessons.Lesson, about string, level int) error {
	hints, err := c.LoadHints(l)
	if err != nil {
		return err
	}
	progress, err := c.LoadProgress()
	if err != nil {
		return err
	}
	shown := 0
	for _, r := range c.RegionsOf(l.Number) {
		if about != "" && !strings.Contains(r.Name, about) {
			continue
		}
		levels := hints[r.Name]
		key := l.Number + " " + r.Name
		next := level
		if next == 0 {
			next = min(progress.Hints[key]+1, len(levels))
		}
		if next < 1 || next > len(levels) {
			return fmt.Errorf("%s has hint levels 1 to %d", r.Name, len(levels))
		}
		h := levels[next-1]
		fmt.Fprintf(w, "── %s · hint %d of %d: %s ──\n\n%s\n\n", r.Name, h.Level, len(levels), h.Title, h.Text)
		progress.Hints[key] = max(progress.Hints[key], next)
		shown++
	}
	if shown == 0 {
		var names []string
		for _, r := range c.RegionsOf(l.Number) {
			names = append(names, r.Name)
		}
		return fmt.Errorf("no region of lesson %s matches %q; its regions: %s", l.Number, about, strings.Join(names, ", "))
	}
	fmt.Fprintf(w, "Run the same command again for the next level; `--level N` shows level N. Hints for one piece: klab course hint %s NAME\n", l.Number)
	return c.SaveProgress(progress)
}
