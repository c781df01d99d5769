package runner

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"io/fs"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lifeos/lifeos/internal/filehash"
	"github.com/lifeos/lifeos/internal/pathglob"
	"github.com/lifeos/lifeos/runner/cache"
)

// A memo lets a no-op run skip an element's key computation, the way make
// compares timestamps: when everything the element's key is derived from
// is unchanged (the step's definition, the params, the policy, the
// upstream results it reads, its item) and every input and output file has
// the stat it had when the element was last served, the element is cached
// with the outputs it had then. Anything else, and the element takes the
// full path (resolve params, hash the key, look up the cache), which also
// refreshes the memo.
//
// A memo is only recorded when no file involved was modified within
// racyWindow of being stat'ed, for the reason git's index has its "racily
// clean" rule: a change within the timestamp granularity could go unseen.
type memo struct {
	key     [16]byte
	policy  string // policyLines of the step's Deps.Policy when recorded
	output  cache.OutputID
	outputs string // JSON, when small
	// Large outputs are referred to (stored.go): the cache object holding
	// their JSON, its size, and the small outputs as JSON.
	outRef   cache.OutputID
	outSize  int64
	outHead  string
	outItems bool // they hold "items"
	patterns []string
	inputs   []stamp
	writes   []stamp
	// dir is the stamp of the folder that one pattern lists (pathglob.OneDir),
	// taken before it was listed: while the folder keeps it, inputs are the
	// files the pattern matches, and only their stamps are compared.
	dir stamp
}

// stamp is a file's identity for the memo: what make and git's index
// compare instead of content.
type stamp struct {
	path        string
	size, mtime int64
	ino         uint64
}

// appendTo appends the stamp as the state file keeps it ("<size> <mtime>
// <inode> <escaped path>"; parseStamp reads it back).
func (s stamp) appendTo(b []byte) []byte {
	b = filehash.Stamp{Size: s.size, Mtime: s.mtime, Ino: s.ino}.AppendText(b)
	return append(b, escapeLine(s.path)...)
}

func parseStamp(s string) (stamp, bool) {
	st, path, ok := filehash.CutStamp(s)
	if !ok {
		return stamp{}, false
	}
	return stampFrom(unescapeLine(path), st), true
}

func parseHex16(dst []byte, s string) error {
	if len(s) != 2*len(dst) {
		return fmt.Errorf("bad length")
	}
	_, err := hex.Decode(dst, []byte(s))
	return err
}

func stampOf(path string, info fs.FileInfo) stamp {
	return stamp{path: path, size: info.Size(), mtime: info.ModTime().UnixNano(), ino: filehash.Inode(info)}
}

func stampFrom(path string, st filehash.Stamp) stamp {
	return stamp{path: path, size: st.Size, mtime: st.Mtime, ino: st.Ino}
}

// statStamp stats the workspace-relative file rel (links followed).
func statStamp(root, rel string) (stamp, bool) {
	st, _, err := filehash.Stat(pathglob.Abs(root, rel))
	if err != nil {
		return stamp{}, false
	}
	return stampFrom(rel, st), true
}

// racy reports whether the file was modified too recently to trust its stat.
func (s stamp) racy(now time.Time) bool {
	return now.UnixNano()-s.mtime <= int64(racyWindow)
}

const racyWindow = filehash.RacyWindow

func (m *memo) equal(o *memo) bool {
	if m == nil || o == nil {
		return m == o
	}
	if m.key != o.key || m.output != o.output || m.outputs != o.outputs || m.policy != o.policy || m.dir != o.dir ||
		m.outRef != o.outRef || m.outSize != o.outSize || m.outHead != o.outHead || m.outItems != o.outItems ||
		len(m.patterns) != len(o.patterns) || len(m.inputs) != len(o.inputs) || len(m.writes) != len(o.writes) {
		return false
	}
	for i := range m.patterns {
		if m.patterns[i] != o.patterns[i] {
			return false
		}
	}
	for i := range m.inputs {
		if m.inputs[i] != o.inputs[i] {
			return false
		}
	}
	for i := range m.writes {
		if m.writes[i] != o.writes[i] {
			return false
		}
	}
	return true
}

// memoable reports whether a step's elements may use memos: its results
// must be a function of what memoFingerprint covers. Expressions that read
// run (a new id every run) or the clock make every run different.
func (s *Step) memoable() bool {
	for _, x := range s.exprs() {
		if x.impure {
			return false
		}
	}
	return true
}

// exprs returns the expressions that decide a step's params and elements.
func (s *Step) exprs() []*Expr {
	var out []*Expr
	if s.When != nil {
		out = append(out, s.When)
	}
	if s.Foreach != nil && s.Foreach.Expr != nil {
		out = append(out, s.Foreach.Expr)
	}
	for _, t := range s.templates {
		for _, p := range t.Parts {
			if p.Expr != nil {
				out = append(out, p.Expr)
			}
		}
	}
	return out
}

// memoHit serves an element from its memo when every file still has the
// stat it had. Any doubt is a miss.
func (e *engine) memoHit(el *element, pl *probeLocal) bool {
	es := e.state.elem(el.n.s.ID, el.label)
	if es == nil {
		return false
	}
	m := es.memo
	if m == nil || m.key != el.memoKey || !e.samePolicy(m.policy) {
		return false
	}
	if e.trimmed() {
		// "cached" must mean the cache has it: after a trim, the entry
		// is checked too.
		if _, err := e.cache.Get(es.action); err != nil {
			return false
		}
	}
	if e.o.Share && !e.cache.Shared(es.action) {
		return false // restored instead, and shared (RunOptions.Share)
	}
	if !e.inputsMatch(el, es, m) {
		return false
	}
	for _, w := range m.writes {
		if !e.stampMatches(w) {
			return false
		}
		pl.seen = append(pl.seen, w)
		// A declared file's folder is not stamped (other files live there):
		// a temporary file a killed run left beside it must be swept here.
		if dir := path.Dir(w.path); dir != pl.swept {
			e.sweep(dir, false)
			pl.swept = dir
		}
	}
	var outputs any
	if m.outRef != (cache.OutputID{}) {
		// Hashed, not decoded: a damaged object is a miss here, and it is
		// decoded only if a step downstream reads it.
		if sum, n, err := filehash.Sum(e.cache.ObjectPath(m.outRef)); err != nil || n != m.outSize || cache.OutputID(sum) != m.outRef {
			return false
		}
		s := &storedOutputs{c: e.cache, ref: m.outRef, size: m.outSize, items: m.outItems}
		if json.Unmarshal([]byte(m.outHead), &s.head) != nil {
			return false
		}
		outputs = s
	} else {
		var err error
		if outputs, err = decodeOutputs([]byte(m.outputs)); err != nil {
			return false
		}
		el.outJSON = []byte(m.outputs)
	}
	el.outputs, el.output, el.action = outputs, m.output, es.action
	return true
}

// stampMatches reports whether a file still has its stamp (a stamp just
// confirmed in this run counts).
func (e *engine) stampMatches(want stamp) bool {
	if st, ok := e.seen.get(want.path); ok {
		return st == want
	}
	st, err := e.stats.Stat(want.path)
	return err == nil && stampFrom(want.path, st) == want
}

// inputsMatch reports whether a memo's input patterns still give the same
// files with the same stamps.
func (e *engine) inputsMatch(el *element, es *elemState, m *memo) bool {
	if len(m.patterns) == 1 && len(m.inputs) == 1 && m.patterns[0] == m.inputs[0].path {
		// One file, the shape of a foreach element's input: its stat, and
		// nothing of the glob machinery.
		return e.stampMatches(m.inputs[0])
	}
	dir := e.listedDir(m.patterns)
	if dir.path != "" && dir == m.dir {
		// The folder the pattern lists is as it was: the same names, so
		// their stamps alone (a filter over every image: stat'ed already
		// by the elements that wrote them).
		for _, st := range m.inputs {
			if !e.stampMatches(st) {
				return false
			}
		}
		return true
	}
	match, byFolder := e.walkMatches(m)
	if !match {
		return false
	}
	if dir.path != "" && byFolder && !dir.racy(time.Now()) {
		// The folder changed, not what the pattern matches in it (the
		// step wrote its output beside its inputs): remember it as it is.
		fresh := *m
		fresh.dir = dir
		e.state.set(el.n.s.ID, el.label, es.action, &fresh)
	}
	return true
}

// listedDir is the stamp of the folder the patterns list, when they are one
// pattern pathglob.ListedDir knows (pathglob.WalkListed says, when the memo
// is made, whether that folder alone decides what it holds); otherwise
// zero.
func (e *engine) listedDir(patterns []string) stamp {
	if len(patterns) != 1 {
		return stamp{}
	}
	dir, ok := pathglob.ListedDir(patterns[0])
	if !ok {
		return stamp{}
	}
	st, _ := statStamp(e.plan.Root, dir)
	return st
}

// walkMatches reports whether a memo's patterns, listed, give its inputs,
// and whether one folder decided what they found (pathglob.WalkListed).
func (e *engine) walkMatches(m *memo) (match, byFolder bool) {
	i := 0
	byFolder, err := pathglob.WalkListed(e.plan.Root, m.patterns, func(rel string, d fs.DirEntry) error {
		st, err := e.stampOfEntry(rel, d)
		if err != nil {
			return err
		}
		if i >= len(m.inputs) || st != m.inputs[i] {
			return errMemoMiss
		}
		i++
		return nil
	})
	return err == nil && i == len(m.inputs), byFolder
}

var errMemoMiss = fmt.Errorf("memo miss")

// stampOfEntry is the stamp of a listed file: the one a memo confirmed
// earlier in this run (a filter over every image), else its stat.
func (e *engine) stampOfEntry(rel string, d fs.DirEntry) (stamp, error) {
	if st, ok := e.seen.get(rel); ok {
		return st, nil
	}
	info, err := d.Info()
	if err != nil {
		return stamp{}, err
	}
	return stampOf(rel, info), nil
}

// samePolicy reports whether the policy still has the values recorded in
// lines (policyLines), the ones the step reads itself.
func (e *engine) samePolicy(lines string) bool {
	if lines == "" {
		return true
	}
	var paths []string
	for _, l := range strings.SplitAfter(lines, "\n") {
		if p, _, ok := strings.Cut(l, "="); ok {
			paths = append(paths, p)
		}
	}
	return e.policyLines(paths) == lines
}

// seenStamps remembers the stamps of outputs that memos just confirmed, so a
// downstream step whose inputs are those outputs (a filter over every
// image) does not stat them again. Anything that runs for real may write
// anywhere, so it clears the lot.
//
// The probe workers look a stamp up for every file they check and add
// theirs after each batch. Behind one lock, a reader often found a batch
// being added and slept, and waking it took 0.1-0.3 ms on a 2-core VM: a
// dozen times in a 1,000-element no-op, in a trace. So the stamps are
// spread over shards, each with its own lock on its own cache line, and a
// clear is one atomic increment that makes every shard's stamps stale.
type seenStamps struct {
	gen atomic.Uint64 // bumped by clear, so a stat taken before a clear is not kept
	// hint is the size to make the maps with: the largest foreach so far
	// (growing a map of 10,000 stamps step by step cost more than filling it).
	hint   atomic.Int64
	filled atomic.Bool // a shard may hold a map: clear frees them
	shards [seenShards]seenShard
}

const seenShards = 32

type seenShard struct {
	mu  sync.RWMutex
	m   map[string]stamp
	gen uint64   // the generation m holds
	_   [24]byte // 64 bytes in all
}

var seenSeed = maphash.MakeSeed()

func (s *seenStamps) shard(path string) *seenShard {
	return &s.shards[maphash.String(seenSeed, path)%seenShards]
}

// reserve notes that up to n stamps may come.
func (s *seenStamps) reserve(n int) {
	for {
		h := s.hint.Load()
		if int64(n) <= h || s.hint.CompareAndSwap(h, int64(n)) {
			return
		}
	}
}

func (s *seenStamps) generation() uint64 { return s.gen.Load() }

func (s *seenStamps) get(path string) (stamp, bool) {
	sh := s.shard(path)
	gen := s.gen.Load()
	sh.mu.RLock()
	st, ok := sh.m[path]
	ok = ok && sh.gen == gen
	sh.mu.RUnlock()
	return st, ok
}

// putAll keeps stamps confirmed since generation gen, unless a clear came
// between.
func (s *seenStamps) putAll(sts []stamp, gen uint64) {
	for _, st := range sts {
		sh := s.shard(st.path)
		sh.mu.Lock()
		// Checked under the shard's lock: a clear after it leaves this
		// stamp in a shard of the old generation, which get ignores.
		now := s.gen.Load()
		if gen != now {
			sh.mu.Unlock()
			return
		}
		if sh.m == nil || sh.gen != now {
			sh.m, sh.gen = make(map[string]stamp, s.hint.Load()/seenShards), now
			s.filled.Store(true)
		}
		sh.m[st.path] = st
		sh.mu.Unlock()
	}
}

// clear forgets every stamp. Running elements clear before and after
// they run, so it costs one increment unless stamps were kept since the
// last clear; then their maps are let go (100,000 stamps are 10 MB).
func (s *seenStamps) clear() {
	now := s.gen.Add(1)
	if !s.filled.Swap(false) {
		return
	}
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		if sh.gen != now {
			sh.m = nil
		}
		sh.mu.Unlock()
	}
}

// recordMemo stores the memo of an element just served or run, unless a
// file involved is too fresh to trust its stat.
func (e *engine) recordMemo(el *element, outputsJSON []byte, writes []stamp) {
	var m *memo
	if el.memoOK {
		now := time.Now()
		m = &memo{key: el.memoKey, output: el.output, patterns: el.deps.Reads, inputs: el.inputs, writes: writes,
			policy: e.policyLines(el.deps.Policy)}
		if !el.inDir.racy(now) {
			m.dir = el.inDir // else listed every time, as before
		}
		// By reference only when the record may show them as they are
		// (no secret to redact): compact refers to the same object.
		// Outputs kept by reference as stored outputs come without their
		// JSON (store lets it go): they are plain (outputsFrom).
		size, plain := int64(len(outputsJSON)), false
		if _, stored := el.outputs.(*storedOutputs); stored && outputsJSON == nil {
			size, plain = el.outSize, true
		} else if size > memoOutputsMax {
			plain = e.outputsPlain(el, outputsJSON)
		}
		if size > memoOutputsMax && plain {
			head, herr := jsonText(smallOutputs(el.outputs))
			ref, perr := el.outRef, error(nil)
			if ref == (cache.OutputID{}) {
				ref, perr = e.cache.PutData(outputsJSON)
			}
			if herr != nil || perr != nil {
				m = nil // no memo: the next run takes the full path
			} else {
				m.outRef, m.outSize, m.outHead = ref, size, string(head)
				m.outItems = producesItems(el.outputs)
			}
		} else {
			m.outputs = string(outputsJSON)
		}
		for _, st := range append(append([]stamp{}, el.inputs...), writes...) {
			if m != nil && st.racy(now) {
				m = nil
				break
			}
		}
	}
	e.state.set(el.n.s.ID, el.label, el.action, m)
}
