package steps

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"

	"github.com/lifeos/lifeos/internal/atomicfile"
	"github.com/lifeos/lifeos/internal/overrides"
	"github.com/lifeos/lifeos/internal/par"
	"github.com/lifeos/lifeos/internal/pathglob"
	"github.com/lifeos/lifeos/internal/robustio"
	"github.com/tidwall/gjson"
)

func init() {
	Register(&Type{
		Name:    "filter",
		Version: 2,
		Summary: "split items into approved and rejected by an expression over each item and the policy",
		New:     func() Step { return new(Filter) },
	})
}

// Filter evaluates its approve expression for every item of its needs and
// writes output/approved/ and output/rejected/ (hard links where the file
// system allows, copies otherwise), with the failing clause of every
// rejection in outputs and in output/filter.json.
type Filter struct {
	Approve string `yaml:"approve" lifeos:"item-expr" doc:"expression over item and policy; true approves the item"`
	Output  string `yaml:"output" doc:"directory that receives approved/, rejected/ and filter.json"`
}

// Validate checks the params.
func (f *Filter) Validate() error {
	if f.Approve == "" {
		return errors.New("filter needs approve: an expression over item, such as item.sharp.sharpness >= policy.sharpness.min")
	}
	if f.Output == "" {
		return errors.New("filter needs output: a directory for approved/ and rejected/")
	}
	return pathglob.Check(f.Output)
}

// Deps: the filter takes its needs' items and writes approved/, rejected/
// and filter.json in its output directory, and nothing else there (a
// report or a history may share the directory).
func (f *Filter) Deps(map[string]Outputs) Deps {
	// The human decisions of overrides.yaml are part of the key: changing
	// them re-runs the filter, not the scoring.
	return Deps{Items: true, Reads: []string{overrides.Pattern}, Writes: []string{
		path.Join(f.Output, "approved"), path.Join(f.Output, "rejected"), path.Join(f.Output, "filter.json")}}
}

// Verdict is a filter's decision on one item. The filter files it on the
// item under its step id, so that expressions read
// `item.<filter id>.approved` and `.reason`, and the scorecard and report
// read it with VerdictOf.
type Verdict struct {
	Approved bool
	Reason   string
	// Override is the reason of the human decision (overrides.yaml) that
	// decided, if one did.
	Override string
}

// Fields is the verdict as the filter files it on an item.
func (v Verdict) Fields() map[string]any {
	m := map[string]any{"approved": v.Approved}
	if !v.Approved {
		m["reason"] = v.Reason
	}
	if v.Override != "" {
		m["override"] = v.Override
	}
	return m
}

// Why says what decided: the rejection's reason, or for an image a human
// approved, "override: <reason>"; "" for an image its scores approved.
func (v Verdict) Why() string {
	if v.Approved && v.Override != "" {
		return "override: " + v.Override
	}
	return v.Reason
}

// VerdictOf returns filter id's verdict on an item, if it judged it.
// Fields come back from JSON (a cached step's outputs) as maps, so the
// verdict is read from its fields.
func VerdictOf(it Item, id string) (Verdict, bool) {
	f, _ := it.Field(id)
	return verdictIn(f)
}

// verdictIn reads a verdict from its fields.
func verdictIn(f any) (Verdict, bool) {
	m, ok := f.(map[string]any)
	if !ok {
		return Verdict{}, false
	}
	a, ok := m["approved"].(bool)
	r, _ := m["reason"].(string)
	o, _ := m["override"].(string)
	return Verdict{Approved: a, Reason: r, Override: o}, ok
}

// verdictOf returns the verdict of whichever filter judged an item, and
// the filter's id, from the item's fields (Item.Fields: decoded once by a
// caller that reads the others too).
func verdictOf(fields map[string]any) (Verdict, string, bool) {
	for _, id := range sortedKeys(fields) {
		if v, ok := verdictIn(fields[id]); ok {
			return v, id, true
		}
	}
	return Verdict{}, "", false
}

// scoreFailure returns the first score step (by id) that could not score
// the item, and why.
func scoreFailure(it Item) (step, reason string, failed bool) {
	it.eachField(func(k, v gjson.Result) bool {
		// Only a score's error says it failed: looked up without
		// decoding every field of every item a filter judges.
		if v.IsObject() {
			if r := v.Get(ScoreError); r.Type == gjson.String {
				step, reason, failed = k.Str, r.Str, true
			}
		}
		return !failed
	})
	return step, reason, failed
}

// filterSummary is what a filter tells the steps after it about itself.
type filterSummary struct {
	Output, Approve string
	Thresholds      map[string]float64
}

func (f filterSummary) outputs() Outputs {
	th := map[string]any{}
	for k, v := range f.Thresholds {
		th[k] = v
	}
	return Outputs{"output": f.Output, "approve": f.Approve, "thresholds": th}
}

// filterOf finds a filter among a step's needs by its outputs (the last
// in id order when there are several), as they come back from the cache.
func filterOf(up map[string]Outputs) (filterSummary, bool) {
	var f filterSummary
	found := false
	for _, id := range sortedKeys(up) {
		o := up[id]
		approve, isFilter := o["approve"].(string)
		out, hasOut := o["output"].(string)
		if !isFilter || !hasOut {
			continue
		}
		f, found = filterSummary{Output: out, Approve: approve, Thresholds: map[string]float64{}}, true
		if th, ok := o["thresholds"].(map[string]any); ok {
			for k, v := range th {
				if x, ok := number(v); ok {
					f.Thresholds[k] = x
				}
			}
		}
	}
	return f, found
}

type rejection struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// Judge is a filter's verdict on an item. A human decision on its content
// (overrides, by SHA-256) comes first; then an item a scorer could not
// score is rejected with the scorer's reason, whatever the expression
// would make of the missing metrics; then the expression decides, a
// rejection naming the clause and values that decided.
func Judge(it Item, pred Predicate, ov map[string]overrides.Override) (Verdict, error) {
	if o, ok := ov[it.SHA256]; ok {
		v := Verdict{Approved: o.Approve(), Override: o.Reason}
		if !v.Approved {
			v.Reason = "override: " + o.Reason
		}
		return v, nil
	}
	if step, why, failed := scoreFailure(it); failed {
		return Verdict{Reason: fmt.Sprintf("not scored by %s: %s", step, why)}, nil
	}
	ok, reason, err := pred.Eval(it)
	if err != nil {
		return Verdict{}, fmt.Errorf("%s: approve: %w", it.Path, err)
	}
	return Verdict{Approved: ok, Reason: reason}, nil
}

// Run splits the items.
func (f *Filter) Run(ctx context.Context, env *Env) (Outputs, error) {
	pred := env.Predicates["approve"]
	if pred == nil {
		return nil, errors.New("internal error: approve was not compiled")
	}
	list, err := overrides.Read(env.Root)
	if err != nil {
		return nil, err
	}
	ov := overrides.BySHA(list)
	out := filepath.Join(env.Root, filepath.FromSlash(f.Output))
	approved := []string{}
	rejected := []rejection{}
	items := make([]Item, len(env.Items))
	used := map[string]bool{}
	var want []placed
	for i, it := range env.Items {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		v, err := Judge(it, pred, ov)
		if err != nil {
			return nil, err
		}
		ok, reason := v.Approved, v.Reason
		sub := "rejected"
		if ok {
			sub = "approved"
		}
		name := path.Base(it.Path)
		if used[sub+"/"+name] { // two images with one name: keep both
			name = it.SHA256[:12] + "-" + name
		}
		used[sub+"/"+name] = true
		want = append(want, placed{sub: sub, name: name, src: itemFile(env.Root, it)})
		if ok {
			approved = append(approved, it.Path)
		} else {
			rejected = append(rejected, rejection{it.Path, reason})
			fmt.Fprintf(env.Log, "rejected %s: %s\n", it.Path, reason)
		}
		if items[i], err = it.With(env.StepID, v.Fields()); err != nil {
			return nil, err
		}
	}
	if err := place(ctx, out, want); err != nil {
		return nil, err
	}
	rate := 0.0
	if len(items) > 0 {
		rate = float64(len(approved)) / float64(len(items))
	}
	outputs := filterSummary{Output: f.Output, Approve: f.Approve, Thresholds: pred.Thresholds()}.outputs()
	outputs["approved"] = approved
	outputs["rejected"] = rejected
	outputs["approved_rate"] = rate
	outputs["items"] = items
	outputs["summary"] = fmt.Sprintf("%d approved, %d rejected", len(approved), len(rejected))
	err = atomicfile.Write(filepath.Join(out, "filter.json"), 0o666, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false) // the approve expression stays readable
		return enc.Encode(map[string]any{"approve": f.Approve, "approved": approved, "rejected": rejected, "approved_rate": rate})
	})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(env.Log, "%d approved, %d rejected\n", len(approved), len(rejected))
	return outputs, nil
}

// placed is an image's place in the filter's output: sub/name is src.
type placed struct{ sub, name, src string }

// place makes out/approved and out/rejected hold exactly want, changing
// only what differs from what they hold: after a threshold edit, the
// images whose verdict flipped move, the rest stay (relinking 100,000
// images was most of a filter's time). An entry is kept only if it is the
// very file it should be (a hard link to its source); anything else there
// goes, so an image approved by the last threshold never stays in
// approved/ under this one.
func place(ctx context.Context, out string, want []placed) error {
	type have struct {
		path string
		fi   os.FileInfo // Lstat
	}
	// The stats below are on both cores: a batch of 100,000 images is
	// twice as many.
	existing := map[string]have{} // "sub/name"
	for _, sub := range []string{"approved", "rejected"} {
		dir := filepath.Join(out, sub)
		if err := os.MkdirAll(dir, 0o777); err != nil {
			return err
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		found := make([]have, len(ents))
		err = par.For(ctx, len(ents), 2, func(i int) (err error) {
			p := filepath.Join(dir, ents[i].Name())
			found[i].path = p
			found[i].fi, err = os.Lstat(p)
			return err
		})
		if err != nil {
			return err
		}
		for i, e := range ents {
			existing[sub+"/"+e.Name()] = found[i]
		}
	}
	// The source's file, if an entry holds it: kept where it is wanted,
	// moved when its verdict flipped.
	bySrc := map[string]string{} // src -> "sub/name" of an entry that is it
	srcInfo := make([]os.FileInfo, len(want))
	err := par.For(ctx, len(want), 2, func(i int) (err error) {
		srcInfo[i], err = os.Stat(want[i].src)
		return err
	})
	if err != nil {
		return err
	}
	for i, w := range want {
		fi := srcInfo[i]
		for _, sub := range []string{w.sub, other(w.sub)} {
			if h, ok := existing[sub+"/"+w.name]; ok && h.fi.Mode().IsRegular() && os.SameFile(h.fi, fi) {
				bySrc[w.src] = sub + "/" + w.name
				break
			}
		}
	}
	keep := map[string]bool{}
	var moves, links []int
	for i, w := range want {
		key := w.sub + "/" + w.name
		switch at, ok := bySrc[w.src]; {
		case ok && at == key:
			keep[key] = true
		case ok && !keep[at]:
			moves = append(moves, i)
		default:
			links = append(links, i)
		}
	}
	// Two images of one name whose verdicts both flipped would swap
	// places: those are linked again instead of moved.
	moving := map[string]bool{}
	for _, i := range moves {
		moving[bySrc[want[i].src]] = true
	}
	var direct []int
	for _, i := range moves {
		if moving[want[i].sub+"/"+want[i].name] {
			links = append(links, i)
		} else {
			direct = append(direct, i)
		}
	}
	moves = direct
	clear(moving)
	for _, i := range moves {
		moving[bySrc[want[i].src]] = true
	}
	// What is not kept and not about to move goes first, so that moves
	// and links land on free names.
	for key, h := range existing {
		if !keep[key] && !moving[key] {
			if err := robustio.RemoveAll(h.path); err != nil {
				return err
			}
		}
	}
	for _, i := range moves {
		if err := ctx.Err(); err != nil {
			return err
		}
		w := want[i]
		from := bySrc[w.src]
		if err := os.Rename(existing[from].path, filepath.Join(out, w.sub, w.name)); err != nil {
			return err
		}
	}
	for _, i := range links {
		if err := ctx.Err(); err != nil {
			return err
		}
		w := want[i]
		if err := linkOrCopy(w.src, filepath.Join(out, w.sub, w.name)); err != nil {
			return err
		}
	}
	return nil
}

func other(sub string) string {
	if sub == "approved" {
		return "rejected"
	}
	return "approved"
}

// linkOrCopy puts src at dst as a hard link, or a copy across devices.
func linkOrCopy(src, dst string) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	return atomicfile.Write(dst, 0o666, func(w io.Writer) error {
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(w, f)
		return err
	})
}
