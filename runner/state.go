package runner

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/lifeos/lifeos/internal/atomicfile"
	"github.com/lifeos/lifeos/internal/mapfile"
	"github.com/lifeos/lifeos/runner/cache"
)

// keyState remembers, per pipeline, what each step (and foreach element)
// last resolved to: its ActionID, so that plan can compare today's key lines
// with the previous ones (stored in the cache by PutKey) and say what
// changed; and, for cached elements, a memo (see memo.go).
type keyState struct {
	path  string
	ready chan struct{} // closed once the file is read
	mu    sync.Mutex
	elems map[string]*elemState // "<step>\x00<element label>"
	dirty bool
	// swept are the stamps of folders found free of temporary files, by
	// path; touched are those this run looked at, the only ones saved.
	swept   map[string]stamp
	touched map[string]bool
	// trimStamp is the cache's TrimStamp when the memos were last
	// confirmed against it.
	trimStamp int64
	// listings are the files of foreach globs over one folder, by step,
	// with the folder's stamp when listed; used are those this run asked
	// for or set, the only ones saved.
	listings map[string]*listing
	used     map[string]bool
}

// listing is what a glob over one folder matched (pathglob.ListOneDir),
// and the folder's stamp, taken before it was listed.
type listing struct {
	dir   stamp
	glob  string
	files []string
}

// elemState is an element's record. One read from the file stays as its
// text until asked for (parse): a no-op run asks for every element, but
// from its workers, in parallel, while the scheduler goes on; a run of
// some steps never parses the others'. A record read is never changed
// (set replaces it), so save writes its text as it was.
type elemState struct {
	text   string // its lines, from its E line on, as read; "" when made in this run
	once   sync.Once
	bad    bool // the text did not parse: as if there were no record
	action cache.ActionID
	memo   *memo
	m      memo   // where a memo read from the file lives
	keys   string // where its key lines are: "<pack> <offset> <length>" (keylines.go)
}

// parse parses the record's text, once.
func (es *elemState) parse() {
	es.once.Do(func() {
		if es.text != "" {
			es.bad = !es.parseText(es.text)
		}
	})
}

// parsed returns a record made in this run, which needs no parsing.
func parsed(id cache.ActionID, m *memo) *elemState {
	es := &elemState{action: id, memo: m}
	es.once.Do(func() {})
	return es
}

const stateHeader = "lifeos keystate v2\n"

// stateFile is where the key state of a pipeline lives: one file per
// pipeline path under .lifeos/state.
func stateFile(root, pipelineFile string) string {
	sum := sha256.Sum256([]byte(filepath.ToSlash(filepath.Clean(pipelineFile))))
	base := strings.TrimSuffix(filepath.Base(pipelineFile), filepath.Ext(pipelineFile))
	return filepath.Join(root, ".lifeos", "state", base+"-"+hex.EncodeToString(sum[:4])+".ids")
}

var lineEscaper = strings.NewReplacer("\\", `\\`, "\n", `\n`)
var lineUnescaper = strings.NewReplacer(`\\`, "\\", `\n`, "\n")

// escapeLine is lineEscaper, allocating only when there is something to
// escape.
func escapeLine(s string) string {
	if strings.IndexByte(s, '\\') < 0 && strings.IndexByte(s, '\n') < 0 {
		return s
	}
	return lineEscaper.Replace(s)
}

// unescapeLine undoes lineEscaper, allocating only when there is
// something to undo.
func unescapeLine(s string) string {
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	return lineUnescaper.Replace(s)
}

// loadKeyStateAsync reads the state in the background: the scheduler has
// the first step's elements to expand meanwhile. Every method waits for it.
// With mapped, the file is mapped rather than read (RunOptions.MapState).
func loadKeyStateAsync(path string, mapped bool) *keyState {
	ks := &keyState{path: path, elems: map[string]*elemState{}, swept: map[string]stamp{}, touched: map[string]bool{},
		listings: map[string]*listing{}, used: map[string]bool{}, ready: make(chan struct{})}
	go ks.read(mapped)
	return ks
}

// read reads the state file. Anything malformed is dropped: the
// state only makes explanations and no-op runs faster.
//
// Format, the folders found free of temporary files, then one record per
// element:
//
//	S <size> <mtime> <inode> <folder>  (folders found clean)
//	L <step>                           (a foreach's listing:)
//	D <size> <mtime> <inode> <folder>
//	G <glob>
//	F <file>                           (one per file, then:)
//	E <action> <step>\x00<label>
//	K <pack> <offset> <length>      (where its key lines are, keylines.go)
//	M <memo key> <output id>        (the memo, if any:)
//	P <input pattern>
//	I <size> <mtime> <inode> <path>
//	W <size> <mtime> <inode> <path>
//	D <size> <mtime> <inode> <folder the input pattern lists>
//	O <outputs JSON>
//	Q <policy values the step reads: path=JSON lines, escaped>
func (ks *keyState) read(mapped bool) {
	defer close(ks.ready)
	readFile := os.ReadFile
	if mapped {
		// 478 KB for a foreach over 1,000 files: 119 fresh heap pages
		// read into, against a few faults on the page cache's own pages.
		readFile = mapfile.Read
	}
	data, err := readFile(ks.path)
	if err != nil || !bytes.HasPrefix(data, []byte(stateHeader)) {
		return
	}
	// Never modified: the records' texts are slices of it, not copies.
	rest := unsafe.String(unsafe.SliceData(data), len(data))[len(stateHeader):]
	var l *listing
	for len(rest) > 0 && !strings.HasPrefix(rest, "E ") {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		if len(line) < 2 || line[1] != ' ' {
			continue
		}
		switch arg := line[2:]; line[0] {
		case 'S':
			if st, ok := parseStamp(arg); ok {
				ks.swept[st.path] = st
			}
		case 'T':
			ks.trimStamp, _ = strconv.ParseInt(arg, 10, 64)
		case 'L':
			l = &listing{}
			ks.listings[unescapeLine(arg)] = l
		case 'D':
			if l != nil {
				l.dir, _ = parseStamp(arg) // a bad one matches no folder
			}
		case 'G':
			if l != nil {
				l.glob = unescapeLine(arg)
			}
		case 'F':
			if l != nil {
				l.files = append(l.files, unescapeLine(arg))
			}
		}
	}
	// Each element's record runs from its E line to the next: only found
	// here, parsed when asked for. Counted first, so that the map and the
	// records are each allocated once, not grown: every fresh page of
	// heap is a page fault, which costs more than the count. The records
	// are split at the same "\nE " as they are counted by, so there are
	// never more of them than n.
	n := strings.Count(rest, "\nE ") + 1
	ks.elems = make(map[string]*elemState, n)
	all := make([]elemState, n)
	for len(rest) > 0 {
		text := rest
		if i := strings.Index(rest, "\nE "); i >= 0 {
			text, rest = rest[:i+1], rest[i+1:]
		} else {
			rest = ""
		}
		if !strings.HasSuffix(text, "\n") {
			text += "\n" // saved as it was, before the next record
		}
		first, _, _ := strings.Cut(text, "\n")
		if _, key, ok := strings.Cut(first[2:], " "); ok {
			es := &all[0]
			all = all[1:]
			es.text = text
			ks.elems[unescapeLine(key)] = es
		}
	}
}

// parseText parses an element's record (see read), reporting whether its
// action did. A memo that does not parse is dropped.
func (es *elemState) parseText(text string) bool {
	cur := es
	for len(text) > 0 {
		var line string
		line, text, _ = strings.Cut(text, "\n")
		if len(line) < 2 || line[1] != ' ' {
			continue
		}
		rest := line[2:]
		switch line[0] {
		case 'E':
			id, _, _ := strings.Cut(rest, " ")
			a, err := cache.ParseActionID(id)
			if err != nil {
				return false
			}
			cur.action = a
		case 'K':
			cur.keys = rest
		case 'M':
			k, out, _ := strings.Cut(rest, " ")
			m := &cur.m // one allocation per element, not two
			if parseHex16(m.key[:], k) != nil {
				continue
			}
			if o, err := cache.ParseOutputID(out); err == nil {
				m.output = o
				cur.memo = m
				if n := strings.Count(text, "\nI "); n > 1 {
					m.inputs = make([]stamp, 0, n+1) // a filter's thousands, grown once
				}
			}
		case 'P':
			if cur.memo != nil {
				cur.memo.patterns = append(cur.memo.patterns, unescapeLine(rest))
			}
		case 'I', 'W':
			if cur.memo == nil {
				continue
			}
			st, ok := parseStamp(rest)
			if !ok {
				cur.memo = nil
				continue
			}
			if line[0] == 'I' {
				cur.memo.inputs = append(cur.memo.inputs, st)
			} else {
				cur.memo.writes = append(cur.memo.writes, st)
			}
		case 'D':
			if cur.memo != nil {
				cur.memo.dir, _ = parseStamp(rest)
			}
		case 'O':
			if cur.memo != nil {
				cur.memo.outputs = rest
			}
		case 'R': // <object> <size> <items: 0 or 1> <small outputs JSON>
			if cur.memo == nil {
				continue
			}
			f := strings.SplitN(rest, " ", 4)
			if len(f) != 4 || (f[2] != "0" && f[2] != "1") {
				cur.memo = nil
				continue
			}
			ref, err1 := cache.ParseOutputID(f[0])
			size, err2 := strconv.ParseInt(f[1], 10, 64)
			if err1 != nil || err2 != nil {
				cur.memo = nil
				continue
			}
			cur.memo.outRef, cur.memo.outSize, cur.memo.outItems, cur.memo.outHead = ref, size, f[2] == "1", f[3]
		case 'Q':
			if cur.memo != nil {
				cur.memo.policy = unescapeLine(rest)
			}
		}
	}
	return true
}

// listing returns the files a foreach step's glob matched when its folder
// last had the stamp dir; nil when it had another, or the glob was another.
func (ks *keyState) listing(step, glob string, dir stamp) []string {
	<-ks.ready
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if l := ks.listings[step]; l != nil && l.glob == glob && l.dir == dir {
		ks.used[step] = true
		return l.files
	}
	return nil // and unless set again, it is not saved
}

// setListing records what a foreach step's glob matched in a folder with
// the stamp dir.
func (ks *keyState) setListing(step, glob string, dir stamp, files []string) {
	<-ks.ready
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.used[step] = true
	ks.listings[step] = &listing{dir: dir, glob: glob, files: files}
	ks.dirty = true
}

// clean reports whether a folder has the stamp it had when it was last
// found free of temporary files.
func (ks *keyState) clean(st stamp) bool {
	<-ks.ready
	ks.mu.Lock()
	defer ks.mu.Unlock()
	old, ok := ks.swept[st.path]
	if ok && old == st {
		ks.touched[st.path] = true
		return true
	}
	return false
}

// setClean records that a folder with this stamp held no temporary file.
func (ks *keyState) setClean(st stamp) {
	<-ks.ready
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.touched[st.path] = true
	if ks.swept[st.path] != st {
		ks.swept[st.path] = st
		ks.dirty = true
	}
}

// elem returns an element's record, parsed; nil when there is none.
func (ks *keyState) elem(step, label string) *elemState {
	<-ks.ready
	ks.mu.Lock()
	es := ks.elems[step+"\x00"+label]
	ks.mu.Unlock()
	if es == nil {
		return nil
	}
	es.parse() // outside the lock: the workers parse in parallel
	if es.bad {
		return nil
	}
	return es
}

func (ks *keyState) get(step, label string) (cache.ActionID, bool) {
	if es := ks.elem(step, label); es != nil {
		return es.action, true
	}
	return cache.ActionID{}, false
}

// set records the element's ActionID and memo (nil for none).
func (ks *keyState) set(step, label string, id cache.ActionID, m *memo) {
	<-ks.ready
	ks.mu.Lock()
	defer ks.mu.Unlock()
	k := step + "\x00" + label
	var keys string
	if old := ks.elems[k]; old != nil {
		old.parse()
		if !old.bad && old.action == id {
			if old.memo.equal(m) {
				return
			}
			keys = old.keys // the same key, the same lines
		}
	}
	es := parsed(id, m)
	es.keys = keys
	ks.elems[k] = es
	ks.dirty = true
}

// setKeys records where the key lines of the element's ActionID id are.
func (ks *keyState) setKeys(step, label string, id cache.ActionID, ref string) {
	<-ks.ready
	ks.mu.Lock()
	defer ks.mu.Unlock()
	k := step + "\x00" + label
	es := parsed(id, nil)
	if old := ks.elems[k]; old != nil {
		old.parse()
		if !old.bad && old.action == id {
			if old.keys == ref {
				return
			}
			es.memo = old.memo
		}
	}
	es.keys = ref
	ks.elems[k] = es
	ks.dirty = true
}

// retain drops the records of a step's elements that are not in labels:
// images removed from a foreach should not be remembered for ever.
func (ks *keyState) retain(step string, labels map[string]bool) {
	<-ks.ready
	ks.mu.Lock()
	defer ks.mu.Unlock()
	prefix := step + "\x00"
	for k := range ks.elems {
		if strings.HasPrefix(k, prefix) && !labels[k[len(prefix):]] {
			delete(ks.elems, k)
			ks.dirty = true
		}
	}
}

// confirmTrim records that the memos hold for the cache as trimmed at
// stamp: those of the steps checked says were checked against its entries
// this run; any other step's are dropped (a run of some steps only).
func (ks *keyState) confirmTrim(stamp int64, checked map[string]bool) {
	<-ks.ready
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if ks.trimStamp == stamp {
		return
	}
	for k, es := range ks.elems {
		step, _, _ := strings.Cut(k, "\x00")
		if checked[step] {
			continue
		}
		if es.parse(); !es.bad && es.memo != nil {
			ks.elems[k] = parsed(es.action, nil) // a record read is not changed
		}
	}
	ks.trimStamp, ks.dirty = stamp, true
}

// trimmedSince reports whether the cache was trimmed after the memos were
// last confirmed.
func (ks *keyState) trimmedSince(stamp int64) bool {
	<-ks.ready
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return stamp > ks.trimStamp
}

func (ks *keyState) save() error {
	<-ks.ready
	ks.mu.Lock()
	defer ks.mu.Unlock()
	for dir := range ks.swept {
		if !ks.touched[dir] {
			delete(ks.swept, dir) // not this pipeline's any more
			ks.dirty = true
		}
	}
	for step := range ks.listings {
		if !ks.used[step] {
			delete(ks.listings, step) // not a foreach over a folder any more
			ks.dirty = true
		}
	}
	if !ks.dirty {
		return nil
	}
	keys := make([]string, 0, len(ks.elems))
	for k := range ks.elems {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	// Not synced: the state only makes explanations and no-op runs faster,
	// and what a crash damaged is dropped when read.
	return atomicfile.WriteUnsynced(ks.path, 0o666, func(w io.Writer) error {
		bw := bufio.NewWriter(w)
		// Appended by hand, not through Fprintf: 10,000 elements are 60,000
		// lines, written on every run that changes one.
		var b []byte
		line := func(kind byte, parts ...string) {
			b = append(append(b[:0], kind, ' '), parts[0]...)
			for _, p := range parts[1:] {
				b = append(append(b, ' '), p...)
			}
			bw.Write(append(b, '\n'))
		}
		stampLine := func(kind byte, st stamp) {
			b = st.appendTo(append(b[:0], kind, ' '))
			bw.Write(append(b, '\n'))
		}
		bw.WriteString(stateHeader)
		if ks.trimStamp != 0 {
			line('T', strconv.FormatInt(ks.trimStamp, 10))
		}
		dirs := make([]string, 0, len(ks.swept))
		for dir := range ks.swept {
			dirs = append(dirs, dir)
		}
		sort.Strings(dirs)
		for _, dir := range dirs {
			stampLine('S', ks.swept[dir])
		}
		for _, step := range slices.Sorted(maps.Keys(ks.listings)) {
			l := ks.listings[step]
			line('L', escapeLine(step))
			stampLine('D', l.dir)
			line('G', escapeLine(l.glob))
			for _, f := range l.files {
				line('F', escapeLine(f))
			}
		}
		for _, k := range keys {
			es := ks.elems[k]
			if es.text != "" { // as read
				bw.WriteString(es.text)
				continue
			}
			line('E', es.action.String(), escapeLine(k))
			if es.keys != "" {
				line('K', es.keys)
			}
			if m := es.memo; m != nil {
				line('M', hex.EncodeToString(m.key[:]), m.output.String())
				for _, p := range m.patterns {
					line('P', escapeLine(p))
				}
				for _, st := range m.inputs {
					stampLine('I', st)
				}
				for _, st := range m.writes {
					stampLine('W', st)
				}
				if m.dir.path != "" {
					stampLine('D', m.dir)
				}
				if m.outRef != (cache.OutputID{}) {
					items := "0"
					if m.outItems {
						items = "1"
					}
					line('R', m.outRef.String(), strconv.FormatInt(m.outSize, 10), items, m.outHead)
				} else {
					line('O', m.outputs)
				}
				if m.policy != "" {
					line('Q', escapeLine(m.policy))
				}
			}
		}
		return bw.Flush()
	})
}

// diffKeys explains the difference between two sets of key lines:
// "with.count 20 -> 30", "file data/a.txt changed".
func diffKeys(old, cur []string) string {
	split := func(lines []string) (map[string]string, []string) {
		m := map[string]string{}
		var order []string
		for _, l := range lines {
			kind, rest, _ := strings.Cut(l, " ")
			name, val := rest, ""
			switch kind {
			case "param", "file", "policy", "upstream", "params":
				name, val, _ = strings.Cut(rest, " ")
				name = kind + " " + name
			default:
				name, val = kind, rest
			}
			if _, dup := m[name]; !dup {
				order = append(order, name)
			}
			m[name] = val
		}
		return m, order
	}
	om, oorder := split(old)
	cm, corder := split(cur)
	var changes []string
	describe := func(name string) string {
		if p, ok := strings.CutPrefix(name, "param "); ok {
			return p
		}
		return name
	}
	for _, name := range corder {
		ov, had := om[name]
		nv := cm[name]
		switch {
		case !had:
			changes = append(changes, describe(name)+" added")
		case ov == nv:
		case strings.HasPrefix(name, "file "), strings.HasPrefix(name, "upstream "):
			changes = append(changes, name+" changed")
		case name == "items":
			changes = append(changes, "input items changed")
		case name == "stepversion":
			changes = append(changes, "step type version "+ov+" -> "+nv)
		default:
			changes = append(changes, fmt.Sprintf("%s %s -> %s", describe(name), short(ov), short(nv)))
		}
	}
	for _, name := range oorder {
		if _, ok := cm[name]; !ok {
			changes = append(changes, describe(name)+" removed")
		}
	}
	if len(changes) == 0 {
		return "cached result missing or damaged"
	}
	if len(changes) > 3 {
		changes = append(changes[:3], fmt.Sprintf("and %d more changes", len(changes)-3))
	}
	return strings.Join(changes, "; ")
}

func short(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}
