package course

import (
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"klab.dev/klab/lessons"
)

// referenceRoots are the folders of reference code that may hold lesson regions.
var referenceRoots = []string{"broker", "producer", "consumer", "streams", "admin"}

// Tree is a set of generated files: path from the repository root to content.
type Tree map[string][]byte

// Course is what Scan learns of the repository: its module path and the
// lesson regions in its reference code.
type Course struct {
	Root    string
	Module  string
	Regions []Region
	// packages maps a lesson number to the reference packages (folders from
	// the root) that hold its regions.
	packages map[string][]string
}

// FindRoot walks up from dir to the repository root: the folder with the
// go.mod and the lessons.
func FindRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		_, modErr := os.Stat(filepath.Join(d, "go.mod"))
		_, lessonsErr := os.Stat(filepath.Join(d, "lessons", "lessons.go"))
		if modErr == nil && lessonsErr == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no klab repository (a folder with go.mod and lessons/lessons.go) at or above %s", dir)
		}
	}
}

var moduleLine = regexp.MustCompile(`(?m)^module\s+(\S+)`)

func modulePath(gomod []byte) string {
	m := moduleLine.FindSubmatch(gomod)
	if m == nil {
		return ""
	}
	return string(m[1])
}

// Scan reads the reference code under root and collects its lesson regions.
func Scan(root string) (*Course, error) {
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return nil, err
	}
	c := &Course{Root: root, Module: modulePath(gomod), packages: map[string][]string{}}
	for _, top := range referenceRoots {
		err := filepath.WalkDir(filepath.Join(root, top), func(p string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil || d.IsDir() || !isSource(p) {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			src, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			_, regions, err := render(filepath.ToSlash(rel), src, "")
			if err != nil {
				return err
			}
			c.Regions = append(c.Regions, regions...)
			for _, r := range regions {
				pkg := path.Dir(r.File)
				if !contains(c.packages[r.Lesson], pkg) {
					c.packages[r.Lesson] = append(c.packages[r.Lesson], pkg)
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return c, nil
}

func isSource(p string) bool {
	return strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// RegionsOf returns the regions of one lesson.
func (c *Course) RegionsOf(number string) []Region {
	var out []Region
	for _, r := range c.Regions {
		if r.Lesson == number {
			out = append(out, r)
		}
	}
	return out
}

// Generate builds every lesson's exercise and solution, and the exercises
// module's go.mod and go.sum.
func (c *Course) Generate() (Tree, error) {
	t := Tree{}
	for _, l := range lessons.All {
		if len(c.packages[l.Number]) == 0 {
			return nil, fmt.Errorf("lesson %s has no regions in the reference code", l.Number)
		}
		if err := c.lesson(t, l, "exercises", l.Number, nil); err != nil {
			return nil, err
		}
		if err := c.solution(t, l); err != nil {
			return nil, err
		}
	}
	gomod, err := c.exercisesModule()
	if err != nil {
		return nil, err
	}
	t["exercises/go.mod"] = gomod
	if t["exercises/go.sum"], err = os.ReadFile(filepath.Join(c.Root, "go.sum")); err != nil {
		return nil, err
	}
	return t, nil
}

// GenerateLesson builds lesson l's exercise: with the lesson's regions as
// stubs, or solved (every region its reference code) when solved is true.
func (c *Course) GenerateLesson(l lessons.Lesson, solved bool) (Tree, error) {
	t := Tree{}
	stubbed := l.Number
	if solved {
		stubbed = ""
	}
	return t, c.lesson(t, l, "exercises", stubbed, nil)
}

// faultPackages are reference packages whose own tests a lesson's copy
// takes along: the reliability tests that crash, pause and partition
// brokers, so that `klab course test NN --faults` runs them on the
// student's code.
var faultPackages = []string{"broker/clustertest"}

// lesson writes into t the copy of lesson l under base: the lesson's
// reference packages, with stubbed's regions as stubs, and its tests.
// Reference files are read from disk unless override holds them (a
// mutant's variant of a file, keyed by its path from the root).
func (c *Course) lesson(t Tree, l lessons.Lesson, base, stubbed string, override map[string][]byte) error {
	dir := base + "/" + l.Dir()
	pkgs, err := c.lessonPackages(l)
	if err != nil {
		return err
	}
	moved := map[string]string{} // import path of a reference package -> its copy's
	for _, pkg := range pkgs {
		moved[c.Module+"/"+pkg] = c.Module + "/" + dir + "/" + pkg
	}
	for _, pkg := range pkgs {
		entries, err := os.ReadDir(filepath.Join(c.Root, pkg))
		if err != nil {
			return err
		}
		for _, e := range entries {
			test := strings.HasSuffix(e.Name(), "_test.go") && slices.Contains(faultPackages, pkg)
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || (!isSource(e.Name()) && !test) {
				continue
			}
			from := pkg + "/" + e.Name()
			src, ok := override[from]
			if !ok {
				if src, err = os.ReadFile(filepath.Join(c.Root, from)); err != nil {
					return err
				}
			}
			out, regions, err := render(from, src, stubbed)
			if err != nil {
				return err
			}
			header := generatedHeader(from)
			if stubbed != "" && slices.ContainsFunc(regions, func(r Region) bool { return r.Lesson == stubbed }) {
				header = fmt.Sprintf("// Generated by `klab course gen` from %s for lesson %s.\n// Write your code where it says TODO(lesson %s), then run: go run ./cmd/klab course test %s\n\n",
					from, l.Number, l.Number, l.Number)
			}
			lessonsPkg := c.Module + "/lessons"
			if test {
				lessonsPkg = ""
			}
			if t[dir+"/"+from], err = fixup(from, header, out, moved, lessonsPkg); err != nil {
				return err
			}
		}
	}
	// The lesson's tests, and any testdata beside them.
	lessonDir := filepath.Join(c.Root, "lessons", l.Dir())
	return filepath.WalkDir(lessonDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(lessonDir, p)
		rel = filepath.ToSlash(rel)
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		switch {
		case strings.HasSuffix(rel, "_test.go"):
			header := generatedHeader("lessons/" + l.Dir() + "/" + rel)
			t[dir+"/"+rel], err = fixup(rel, header, src, moved, "")
			return err
		case strings.HasPrefix(rel, "testdata/"):
			t[dir+"/"+rel] = src
		}
		return nil
	})
}

// generatedHeader marks a file gen makes and a student never edits, the
// standard Go way (https://go.dev/s/generatedcode): editors and linters
// treat it as generated, and .gitattributes folds it in diffs.
func generatedHeader(from string) string {
	return fmt.Sprintf("// Code generated by klab course gen from %s. DO NOT EDIT.\n\n", from)
}

// solution writes into t lesson l's worked solution: each reference file
// holding one of the lesson's regions, as it reads with every region
// solved, under solutions/NN-slug/. The files are there to be read (and
// are what `klab course solve` writes into the exercise), so they carry
// `//go:build ignore`: alone, without the rest of their package, they
// would not compile. `klab course check` proves that the exercise with
// these regions solved passes the lesson's tests.
func (c *Course) solution(t Tree, l lessons.Lesson) error {
	var files []string
	for _, r := range c.RegionsOf(l.Number) {
		if !slices.Contains(files, r.File) {
			files = append(files, r.File)
		}
	}
	for _, from := range files {
		src, err := os.ReadFile(filepath.Join(c.Root, from))
		if err != nil {
			return err
		}
		out, _, err := render(from, src, "")
		if err != nil {
			return err
		}
		header := generatedHeader(from) + fmt.Sprintf(
			"//go:build ignore\n\n// The worked solution of lesson %s: %s with every TODO(lesson %s) written.\n// `go run ./cmd/klab course solve %s` puts it into exercises/%s/.\n\n",
			l.Number, from, l.Number, l.Number, l.Dir())
		if t["solutions/"+l.Dir()+"/"+from], err = fixup(from, header, out, nil, ""); err != nil {
			return err
		}
	}
	return nil
}

// lessonPackages are the reference packages a lesson's copy holds: those
// with its regions, and every reference package the lesson's tests reach
// that imports one of those, directly or through another copied package.
// A test helper such as broker/clustertest is copied that way, so that it
// runs the student's broker, not the reference one.
func (c *Course) lessonPackages(l lessons.Lesson) ([]string, error) {
	pkgs := slices.Clone(c.packages[l.Number])
	imports := map[string][]string{} // reference package -> the reference packages it imports
	var visit func(pkg string) error
	visit = func(pkg string) error {
		if _, ok := imports[pkg]; ok {
			return nil
		}
		deps, err := c.referenceImports(filepath.Join(c.Root, pkg), isSource)
		if err != nil {
			return err
		}
		imports[pkg] = deps
		for _, d := range deps {
			if err := visit(d); err != nil {
				return err
			}
		}
		return nil
	}
	tested, err := c.referenceImports(filepath.Join(c.Root, "lessons", l.Dir()), func(name string) bool { return strings.HasSuffix(name, "_test.go") })
	if err != nil {
		return nil, err
	}
	for _, pkg := range tested {
		if err := visit(pkg); err != nil {
			return nil, err
		}
	}
	candidates := slices.Sorted(maps.Keys(imports))
	for changed := true; changed; {
		changed = false
		for _, pkg := range candidates {
			if !slices.Contains(pkgs, pkg) && slices.ContainsFunc(imports[pkg], func(d string) bool { return slices.Contains(pkgs, d) }) {
				pkgs = append(pkgs, pkg)
				changed = true
			}
		}
	}
	return pkgs, nil
}

// referenceImports lists the reference packages (under referenceRoots)
// that the Go files in dir accepted by keep import, as folders from the root.
func (c *Course) referenceImports(dir string, keep func(name string) bool) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || !keep(e.Name()) {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(dir, e.Name()), nil, parser.ImportsOnly)
		if err != nil {
			return nil, err
		}
		for _, is := range f.Imports {
			ip, _ := strconv.Unquote(is.Path.Value)
			rel, ok := strings.CutPrefix(ip, c.Module+"/")
			if !ok || !slices.Contains(referenceRoots, strings.Split(rel, "/")[0]) || slices.Contains(out, rel) {
				continue
			}
			out = append(out, rel)
		}
	}
	slices.Sort(out)
	return out, nil
}

// fixup points the imports of moved packages at their copies, adds the
// lessons import a stub needs, drops imports only the removed code used,
// and formats the file with header on top. It edits the source as lines,
// so that a dropped import leaves no gap where it stood.
func fixup(name, header string, src []byte, moved map[string]string, lessonsPkg string) ([]byte, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.ParseComments)
	if err != nil {
		return nil, fmt.Errorf("generated %s does not parse: %w", name, err)
	}
	used := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if id, ok := sel.X.(*ast.Ident); ok {
				used[id.Name] = true
			}
		}
		return true
	})
	lines := strings.SplitAfter(string(src), "\n")
	imported := map[string]bool{}
	for _, is := range f.Imports {
		line := fset.Position(is.Pos()).Line - 1
		name := importName(is)
		imported[name] = true
		p, _ := strconv.Unquote(is.Path.Value)
		switch {
		case name != "_" && name != "." && !used[name]:
			lines[line] = "" // a lone import line goes whole, an import block keeps its parentheses
		case moved[p] != "":
			lines[line] = strings.Replace(lines[line], is.Path.Value, strconv.Quote(moved[p]), 1)
		}
	}
	out := []byte(strings.Join(lines, ""))
	if lessonsPkg != "" && used["lessons"] && !imported["lessons"] {
		out = addImport(out, lessonsPkg)
	}
	out, err = format.Source(append([]byte(header), out...))
	if err != nil {
		return nil, fmt.Errorf("formatting generated %s: %w", name, err)
	}
	return out, nil
}

// importName is the name a file refers to an import by: its own name, or
// the one Go's tools assume from the path, as goimports does — the last
// element (before a /vN), without a "go-" prefix or a "-go" suffix, up to
// the first character that cannot be in a name (github.com/segmentio/kafka-go
// is package kafka).
func importName(is *ast.ImportSpec) string {
	if is.Name != nil {
		return is.Name.Name
	}
	p, _ := strconv.Unquote(is.Path.Value)
	elems := strings.Split(p, "/")
	last := elems[len(elems)-1]
	if len(elems) > 1 && regexp.MustCompile(`^v\d+$`).MatchString(last) {
		last = elems[len(elems)-2]
	}
	last = strings.TrimSuffix(strings.TrimPrefix(last, "go-"), "-go")
	if i := strings.IndexFunc(last, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' }); i > 0 {
		last = last[:i]
	}
	return last
}

// addImport adds an import to a formatted file: as the last group of its
// import block if it has one, after the package clause otherwise.
func addImport(src []byte, importPath string) []byte {
	quoted := strconv.Quote(importPath)
	if i := bytes.Index(src, []byte("import (\n")); i >= 0 {
		at := i + bytes.Index(src[i:], []byte("\n)\n")) + 1
		return append(src[:at:at], append([]byte("\n\t"+quoted+"\n"), src[at:]...)...)
	}
	if i := bytes.Index(src, []byte("\nimport ")); i >= 0 {
		return append(src[:i+1:i+1], append([]byte("import "+quoted+"\n"), src[i+1:]...)...)
	}
	i := bytes.Index(src, []byte("\npackage "))
	j := i + 1 + bytes.IndexByte(src[i+1:], '\n')
	return append(src[:j+1:j+1], append([]byte("\nimport "+quoted+"\n"), src[j+1:]...)...)
}

// exercisesModule is the go.mod of exercises/: a module of its own, so that
// a red exercise never turns the root `go test ./...` red, that takes the
// reference code of earlier lessons from the root module.
func (c *Course) exercisesModule() ([]byte, error) {
	gomod, err := os.ReadFile(filepath.Join(c.Root, "go.mod"))
	if err != nil {
		return nil, err
	}
	body := moduleLine.ReplaceAll(gomod, []byte("module "+c.Module+"/exercises"))
	var b bytes.Buffer
	b.WriteString("// Code generated by klab course gen from ../go.mod. DO NOT EDIT.\n\n")
	b.Write(body)
	fmt.Fprintf(&b, "\nrequire %s v0.0.0\n\nreplace %s => ../\n", c.Module, c.Module)
	return b.Bytes(), nil
}

// Owned reports whether gen owns the file at rel: whether it may create,
// overwrite or delete it.
func Owned(rel string) bool {
	rel = filepath.ToSlash(rel)
	if rel == "exercises/go.mod" || rel == "exercises/go.sum" {
		return true
	}
	for _, base := range []string{"exercises/", "solutions/"} {
		if rest, ok := strings.CutPrefix(rel, base); ok {
			return strings.Contains(rest, "/") && len(rest) > 3 && rest[2] == '-'
		}
	}
	return false
}

// Existing reads the files gen owns as they are on disk.
func (c *Course) Existing() (Tree, error) {
	t := Tree{}
	for _, base := range []string{"exercises", "solutions"} {
		err := filepath.WalkDir(filepath.Join(c.Root, base), func(p string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(c.Root, p)
			if !Owned(rel) {
				return nil
			}
			t[filepath.ToSlash(rel)], err = os.ReadFile(p)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Diff lists the files where have differs from want: missing, changed or extra.
func Diff(want, have Tree) []string {
	var out []string
	for p, w := range want {
		h, ok := have[p]
		switch {
		case !ok:
			out = append(out, "missing: "+p)
		case !bytes.Equal(w, h):
			out = append(out, "differs: "+p)
		}
	}
	for p := range have {
		if _, ok := want[p]; !ok {
			out = append(out, "extra:   "+p)
		}
	}
	sort.Strings(out)
	return out
}

// Write makes the files gen owns on disk exactly t: it writes what differs
// and deletes owned files that t does not have.
func (c *Course) Write(t Tree, have Tree) error {
	for p := range have {
		if _, ok := t[p]; !ok {
			if err := os.Remove(filepath.Join(c.Root, p)); err != nil {
				return err
			}
		}
	}
	for p, b := range t {
		if bytes.Equal(have[p], b) {
			continue
		}
		full := filepath.Join(c.Root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
