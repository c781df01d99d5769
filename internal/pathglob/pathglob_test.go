package pathglob

import (
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"testing"

	"github.com/lifeos/lifeos/internal/testdir"
)

func TestFiles(t *testing.T) {
	top := testdir.New(t)
	root := filepath.Join(top, "ws")
	shared := filepath.ToSlash(filepath.Join(top, "shared"))
	for _, f := range []string{"ws/a/1.png", "ws/a/2.png", "ws/a/b/3.png", "ws/a/notes.txt", "ws/c.png", "shared/s.png", "shared/t.txt"} {
		p := filepath.Join(top, f)
		os.MkdirAll(filepath.Dir(p), 0o777)
		os.WriteFile(p, []byte(f), 0o644)
	}
	for _, tc := range []struct {
		patterns []string
		want     []string
		err      string
	}{
		{[]string{"a/*.png"}, []string{"a/1.png", "a/2.png"}, ""},
		{[]string{"a/**/*.png"}, []string{"a/1.png", "a/2.png", "a/b/3.png"}, ""},
		{[]string{"a/b"}, []string{"a/b/3.png"}, ""}, // a directory means its files
		{[]string{"c.png", "*.png", "./c.png"}, []string{"c.png"}, ""},
		{[]string{"none/*.png"}, nil, ""}, // a pattern may match nothing
		{[]string{"missing.png"}, nil, `input missing.png: (no such file or directory|File not found\.)`},
		{[]string{"a/[.png"}, nil, "not a valid glob"},
		// Reads may be outside the workspace: named as given.
		{[]string{"../shared/*.png", "c.png"}, []string{"c.png", "../shared/s.png"}, ""},
		{[]string{"../shared"}, []string{"../shared/s.png", "../shared/t.txt"}, ""},
		{[]string{shared + "/s.png"}, []string{shared + "/s.png"}, ""},
		{[]string{shared + "/**/*.png"}, []string{shared + "/s.png"}, ""},
		{[]string{"../shared/none.png"}, nil, "input ../shared/none.png: file does not exist"},
		{[]string{"../[x"}, nil, "not a valid glob"},
	} {
		got, err := Files(root, tc.patterns)
		if tc.err != "" {
			if err == nil || !regexp.MustCompile(tc.err).MatchString(err.Error()) {
				t.Errorf("%v: err = %v, want %q", tc.patterns, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%v = %v, %v; want %v", tc.patterns, got, err, tc.want)
		}
	}
}

// Outputs stay in the workspace (Check); reads may leave it (CheckRead).
func TestCheck(t *testing.T) {
	for _, p := range []string{"../x", "/etc/passwd", "a/../../x"} {
		if err := Check(p); err == nil {
			t.Errorf("Check(%q) = nil, want an error", p)
		}
		if err := CheckRead(p); err != nil {
			t.Errorf("CheckRead(%q) = %v", p, err)
		}
	}
	for _, p := range []string{"", "a/[x", "/data/[x"} {
		if CheckRead(p) == nil {
			t.Errorf("CheckRead(%q) = nil, want an error", p)
		}
	}
}

// The one-directory fast path (a pattern like "images/*.png") finds what
// the general doublestar walk finds: files and links to files, no
// directories, dotfiles included, in name order.
func TestOneDirGlobMatchesDoublestar(t *testing.T) {
	root := testdir.New(t)
	for _, f := range []string{"a/1.png", "a/2.png", "a/b/3.png", "a/.hidden.png", "a/notes.txt", "a/x1.png", "c.png", "d/b.png/inner.png"} {
		p := filepath.Join(root, f)
		os.MkdirAll(filepath.Dir(p), 0o777)
		os.WriteFile(p, []byte(f), 0o644)
	}
	os.Symlink("1.png", filepath.Join(root, "a/link.png"))
	os.Symlink("b", filepath.Join(root, "a/dirlink.png"))
	for _, pat := range []string{"a/*.png", "a/?.png", "a/*", "*.png", "*", "d/*.png", "none/*.png", "./a/*.txt", "a/*1*"} {
		if _, _, ok := oneDirGlob(pat); !ok {
			t.Fatalf("%s: not on the fast path", pat)
		}
		fast, err := Files(root, []string{pat})
		if err != nil {
			t.Fatalf("%s: %v", pat, err)
		}
		general, err := Files(root, []string{pat, pat}) // two patterns: the general walk
		if err != nil {
			t.Fatalf("%s (general): %v", pat, err)
		}
		if !reflect.DeepEqual(fast, general) {
			t.Errorf("%s: fast path %v, doublestar %v", pat, fast, general)
		}
	}
	for _, pat := range []string{"a/**/*.png", "a/[12].png", "a/{1,2}.png", "*/1.png", "a/1.png"} {
		if _, _, ok := oneDirGlob(pat); ok {
			t.Errorf("%s: on the fast path", pat)
		}
	}
}

// ListOneDir gives what Files gives, and says when a link made the result
// depend on more than the folder.
func TestListOneDir(t *testing.T) {
	root := testdir.New(t)
	for _, f := range []string{"in/b.png", "in/a.png", "in/c.txt", "elsewhere/x.png"} {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(f)), 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, f), nil, 0o666); err != nil {
			t.Fatal(err)
		}
	}
	files, byFolder, err := ListOneDir(root, "in/*.png")
	if err != nil || !byFolder || !slices.Equal(files, []string{"in/a.png", "in/b.png"}) {
		t.Errorf("ListOneDir = %q, %v, %v", files, byFolder, err)
	}
	if want, _ := Files(root, []string{"in/*.png"}); !slices.Equal(files, want) {
		t.Errorf("ListOneDir = %q, Files = %q", files, want)
	}
	if err := os.Symlink("../elsewhere/x.png", filepath.Join(root, "in/l.png")); err != nil {
		t.Skip(err)
	}
	if st, err := os.Stat(filepath.Join(root, "in/l.png")); err != nil || !st.Mode().IsRegular() {
		t.Skip("a link to a file does not read as the file here (Wine)")
	}
	files, byFolder, err = ListOneDir(root, "in/*.png")
	if err != nil || byFolder || !slices.Equal(files, []string{"in/a.png", "in/b.png", "in/l.png"}) {
		t.Errorf("with a link: ListOneDir = %q, %v, %v", files, byFolder, err)
	}
	if _, _, err := ListOneDir(root, "in/**/*.png"); err == nil {
		t.Error("ListOneDir accepted a pattern over several folders")
	}
}

// A folder named as it is, holding files only, is walked with one read
// and said to be decided by that folder; one holding a folder or a link is
// walked the general way, and is not. Either way the files are those of
// the general walk, in its order.
func TestWalkListed(t *testing.T) {
	root := testdir.New(t)
	for _, f := range []string{"flat/b.png", "flat/.hidden", "flat/a.png", "deep/a.png", "deep/sub/b.png", "linked/a.png", "one.txt"} {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(f)), 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, f), nil, 0o666); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(root, "withdir/empty"), 0o777)
	os.WriteFile(filepath.Join(root, "withdir/a.png"), nil, 0o666)
	links := os.Symlink("../one.txt", filepath.Join(root, "linked/l.txt")) == nil
	if st, err := os.Lstat(filepath.Join(root, "linked/l.txt")); err != nil || st.Mode()&fs.ModeSymlink == 0 {
		links = false // made, but not read back as a link (Wine)
	}
	for _, tc := range []struct {
		patterns []string
		byFolder bool
	}{
		{[]string{"flat"}, true},
		{[]string{"flat/"}, true},
		{[]string{"deep"}, false},
		{[]string{"withdir"}, false}, // a file added to its empty folder would not change it
		{[]string{"linked"}, !links},
		{[]string{"flat/*.png"}, true},
		{[]string{"one.txt"}, true},
		{[]string{"flat", "one.txt"}, false},
	} {
		var got []string
		byFolder, err := WalkListed(root, tc.patterns, func(rel string, d fs.DirEntry) error {
			got = append(got, rel)
			return nil
		})
		var want []string
		werr := walkAll(root, tc.patterns, func(rel string, d fs.DirEntry) error {
			want = append(want, rel)
			return nil
		})
		// By folder means by the folder (or file) ListedDir names.
		if _, ok := ListedDir(tc.patterns[0]); byFolder && (len(tc.patterns) != 1 || !ok) {
			t.Errorf("WalkListed(%q) by folder, and ListedDir names none", tc.patterns)
		}
		if err != nil || werr != nil || byFolder != tc.byFolder || !slices.Equal(got, want) {
			t.Errorf("WalkListed(%q) = %q, %v, %v; want %q, %v (%v)", tc.patterns, got, byFolder, err, want, tc.byFolder, werr)
		}
	}
}

// No wildcard and no folder named as an input reaches into lifeos's state
// or git's, and a path into one named as it is does. Only the workspace's
// own are hidden.
func TestHiddenAreNotMatched(t *testing.T) {
	root := testdir.New(t)
	nested := "d/" + StateDir + "/c.json"
	for _, f := range []string{"a.json", "d/b.json", StateDir + "/runs/r/run.json", StateDir + "/x.json", ".git/y.json", nested} {
		p := filepath.Join(root, filepath.FromSlash(f))
		os.MkdirAll(filepath.Dir(p), 0o777)
		os.WriteFile(p, []byte(f), 0o644)
	}
	for pat, want := range map[string][]string{
		"**/*.json":             {"a.json", nested, "d/b.json"},
		"**":                    {"a.json", nested, "d/b.json"},
		".":                     {"a.json", nested, "d/b.json"},
		"*":                     {"a.json"},
		".*/*.json":             nil,
		StateDir + "/runs":      {StateDir + "/runs/r/run.json"},
		StateDir + "/*.json":    {StateDir + "/x.json"},
		StateDir + "/**/*.json": {StateDir + "/runs/r/run.json", StateDir + "/x.json"},
	} {
		got, err := Files(root, []string{pat})
		if err != nil {
			t.Fatalf("%s: %v", pat, err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: %q, want %q", pat, got, want)
		}
	}
	// A git worktree's .git is a file: hidden all the same, on the fast
	// paths for one folder too.
	flat := testdir.New(t)
	for _, f := range []string{".git", "a.json"} {
		os.WriteFile(filepath.Join(flat, f), []byte(f), 0o644)
	}
	for _, pat := range []string{"*", ".", "**"} {
		if got, err := Files(flat, []string{pat}); err != nil || !slices.Equal(got, []string{"a.json"}) {
			t.Errorf("%s beside a .git file: %q (%v), want [a.json]", pat, got, err)
		}
	}
}
