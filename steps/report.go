package steps

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"image"
	"image/jpeg"
	"io"
	"maps"
	"math"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/lifeos/lifeos/internal/atomicfile"
	"github.com/lifeos/lifeos/internal/pathglob"
)

func init() {
	Register(&Type{
		Name:    "report",
		Version: 2, // 2: the scorecard's grade heads the report
		Summary: "batch report in Markdown, JSON and self-contained HTML: counts, scores, best and worst, gallery, histograms",
		New:     func() Step { return new(Report) },
	})
}

// Report writes batch_report.md, batch_report.json and batch_report.html
// for the items of its needs: counts, mean approved scores, the best and
// worst items, the generation settings found on the items, a gallery of
// thumbnails with scores and rejection reasons, and a histogram per metric
// with the filter's threshold marked. The HTML embeds everything and opens
// offline.
type Report struct {
	Output string `yaml:"output" doc:"directory for the reports (default: the upstream filter's output)"`
	Title  string `yaml:"title" doc:"report title (default: Batch report)"`
}

// Validate checks the output path.
func (r *Report) Validate() error {
	if r.Output != "" {
		return pathglob.Check(r.Output)
	}
	return nil
}

// Deps: the report takes its needs' items and outputs and the scorecard
// weights, and writes its three files in its output directory.
func (r *Report) Deps(up map[string]Outputs) Deps {
	d := Deps{Items: true, Upstream: true, Policy: []string{"scorecard.weights"}}
	if out, _, _ := r.output(up); out != "" {
		for _, ext := range reportExts {
			d.Writes = append(d.Writes, path.Join(out, "batch_report"+ext))
		}
	}
	return d
}

// output is the report's directory: its own, or its filter's.
func (r *Report) output(up map[string]Outputs) (dir string, filter filterSummary, hasFilter bool) {
	filter, hasFilter = filterOf(up)
	dir = r.Output
	if dir == "" && hasFilter {
		dir = filter.Output
	}
	return dir, filter, hasFilter
}

// reportExts are the report's files: batch_report plus each.
var reportExts = []string{".md", ".json", ".html"}

// thumbSide is the longest side of gallery thumbnails.
const thumbSide = 192

type reportItem struct {
	Path      string             `json:"path"`
	SHA256    string             `json:"sha256"`
	Width     int                `json:"width"`
	Height    int                `json:"height"`
	Metrics   map[string]float64 `json:"metrics"`
	Composite *float64           `json:"composite,omitempty"`
	Verdict   string             `json:"verdict,omitempty"` // approved, rejected, or "" without a filter
	Reason    string             `json:"reason,omitempty"`
	Thumb     template.URL       `json:"-"`
}

type histogram struct {
	Metric    string    `json:"metric"`
	Min, Max  float64   `json:"-"`
	Bins      []int     `json:"bins"`
	Edges     []float64 `json:"edges"`
	Threshold *float64  `json:"threshold,omitempty"`
}

type reportData struct {
	Title        string              `json:"title"`
	Pipeline     string              `json:"pipeline"`
	Run          string              `json:"run"`
	Count        int                 `json:"count"`
	Approved     int                 `json:"approved"`
	Rejected     int                 `json:"rejected"`
	ApprovedRate *float64            `json:"approved_rate,omitempty"`
	Approve      string              `json:"approve,omitempty"`
	Grade        string              `json:"grade,omitempty"` // from a scorecard among the needs
	Composite    *float64            `json:"composite,omitempty"`
	MeanApproved map[string]float64  `json:"mean_approved"`
	MeanAll      map[string]float64  `json:"mean_all"`
	Best, Worst  []reportItem        `json:"-"`
	BestPaths    []string            `json:"best"`
	WorstPaths   []string            `json:"worst"`
	Settings     map[string][]string `json:"settings,omitempty"`
	Histograms   []histogram         `json:"histograms"`
	Items        []reportItem        `json:"items"`
	Metrics      []string            `json:"metrics"`
	Thresholds   map[string]float64  `json:"thresholds,omitempty"`
}

// Run writes the three reports.
func (r *Report) Run(ctx context.Context, env *Env) (Outputs, error) {
	if len(env.Items) == 0 {
		return nil, errors.New("no items to report on")
	}
	d := &reportData{Title: r.Title, Pipeline: env.Run.Pipeline, Run: env.Run.ID, Count: len(env.Items)}
	if d.Title == "" {
		d.Title = "Batch report"
	}
	for _, id := range sortedKeys(env.Upstream) {
		// A scorecard among the needs: the batch's grade heads the report.
		up := env.Upstream[id]
		if g, ok := up["grade"].(string); ok {
			if c, ok := up["composite"].(float64); ok {
				d.Grade, d.Composite = g, &c
				break
			}
		}
	}
	out, filter, hasFilter := r.output(env.Upstream)
	if hasFilter {
		d.Approve = filter.Approve
		d.Thresholds = filter.Thresholds
	}
	if out == "" {
		return nil, errors.New("report needs output: a directory (or a filter among its needs, whose output it uses)")
	}
	metricSet := map[string]bool{}
	for _, it := range env.Items {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ri := reportItem{Path: it.Path, SHA256: it.SHA256, Width: it.Width, Height: it.Height, Metrics: map[string]float64{}}
		fields := it.Fields()
		verdict, filterID, judged := verdictOf(fields)
		if judged {
			ri.Verdict = map[bool]string{true: "approved", false: "rejected"}[verdict.Approved]
			ri.Reason = verdict.Why()
		}
		for step, v := range fields {
			m, ok := v.(map[string]any)
			if !ok || judged && step == filterID {
				continue
			}
			for name, x := range m {
				if f, ok := x.(float64); ok {
					ri.Metrics[step+"."+name] = f
					metricSet[step+"."+name] = true
				}
			}
		}
		c, _, _, ok, err := composite(ri.Metrics, env.Policy["scorecard.weights"])
		if err != nil {
			return nil, err
		}
		if ok {
			c = round4(c)
			ri.Composite = &c
		}
		thumb, err := thumbnail(env.Root, it)
		if err != nil {
			fmt.Fprintf(env.Log, "warning: no thumbnail for %s: %v\n", it.Path, err)
		}
		ri.Thumb = thumb
		switch ri.Verdict {
		case "approved":
			d.Approved++
		case "rejected":
			d.Rejected++
		}
		d.Items = append(d.Items, ri)
	}
	d.Metrics = sortedKeys(metricSet)
	if d.Approved+d.Rejected > 0 {
		rate := round4(float64(d.Approved) / float64(d.Approved+d.Rejected))
		d.ApprovedRate = &rate
	}
	d.MeanAll, d.MeanApproved = means(d.Items, d.Metrics, ""), means(d.Items, d.Metrics, "approved")
	d.Best, d.Worst = bestWorst(d.Items, min(5, len(d.Items)/2))
	for _, it := range d.Best {
		d.BestPaths = append(d.BestPaths, it.Path)
	}
	for _, it := range d.Worst {
		d.WorstPaths = append(d.WorstPaths, it.Path)
	}
	d.Settings = settings(env.Items)
	for _, m := range d.Metrics {
		d.Histograms = append(d.Histograms, makeHistogram(d.Items, m, d.Thresholds))
	}
	dir := filepath.Join(env.Root, filepath.FromSlash(out))
	files := map[string]func(io.Writer) error{
		"batch_report.json": func(w io.Writer) error {
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			enc.SetEscapeHTML(false)
			return enc.Encode(d)
		},
		"batch_report.md":   func(w io.Writer) error { return writeMarkdown(w, d) },
		"batch_report.html": func(w io.Writer) error { return htmlReport().Execute(w, d) },
	}
	for _, name := range sortedKeys(files) {
		if err := atomicfile.Write(filepath.Join(dir, name), 0o666, files[name]); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	fmt.Fprintf(env.Log, "wrote %s/batch_report.{md,json,html}\n", out)
	return Outputs{"html": out + "/batch_report.html", "markdown": out + "/batch_report.md", "json": out + "/batch_report.json",
		"approved": d.Approved, "rejected": d.Rejected, "summary": "open " + out + "/batch_report.html"}, nil
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// means averages each metric over the items with the verdict ("" for all).
func means(items []reportItem, metrics []string, verdict string) map[string]float64 {
	out := map[string]float64{}
	for _, m := range metrics {
		var sum float64
		n := 0
		for _, it := range items {
			if v, ok := it.Metrics[m]; ok && (verdict == "" || it.Verdict == verdict) {
				sum += v
				n++
			}
		}
		if n > 0 {
			out[m] = round4(sum / float64(n))
		}
	}
	return out
}

// bestWorst ranks items by composite (the scorecard's weighting rule);
// items without one rank last.
func bestWorst(items []reportItem, n int) (best, worst []reportItem) {
	score := func(it reportItem) float64 {
		if it.Composite != nil {
			return *it.Composite
		}
		return math.Inf(-1)
	}
	ranked := append([]reportItem{}, items...)
	sort.SliceStable(ranked, func(i, j int) bool { return score(ranked[i]) > score(ranked[j]) })
	n = min(n, len(ranked))
	best = ranked[:n]
	for i := len(ranked) - 1; i >= len(ranked)-n; i-- {
		worst = append(worst, ranked[i])
	}
	return best, worst
}

// settings collects the distinct generation settings found on items.
func settings(items []Item) map[string][]string {
	out := map[string][]string{}
	for _, f := range settingFields {
		seen := map[string]bool{}
		for _, it := range items {
			v, ok := it.Field(f)
			if !ok {
				continue
			}
			b, _ := json.Marshal(v)
			if s := string(b); !seen[s] {
				seen[s] = true
				out[f] = append(out[f], s)
			}
		}
	}
	return out
}

const histBins = 20

func makeHistogram(items []reportItem, metric string, thresholds map[string]float64) histogram {
	h := histogram{Metric: metric, Min: math.Inf(1), Max: math.Inf(-1), Bins: make([]int, histBins)}
	for _, it := range items {
		if v, ok := it.Metrics[metric]; ok {
			h.Min, h.Max = math.Min(h.Min, v), math.Max(h.Max, v)
		}
	}
	if t, ok := thresholds[metric]; ok {
		h.Threshold = &t
		h.Min, h.Max = math.Min(h.Min, t), math.Max(h.Max, t)
	}
	if h.Max <= h.Min {
		h.Max = h.Min + 1
	}
	for i := 0; i <= histBins; i++ {
		h.Edges = append(h.Edges, round4(h.Min+(h.Max-h.Min)*float64(i)/histBins))
	}
	for _, it := range items {
		if v, ok := it.Metrics[metric]; ok {
			b := min(int((v-h.Min)/(h.Max-h.Min)*histBins), histBins-1)
			h.Bins[b]++
		}
	}
	return h
}

// SVG draws the histogram, with the threshold as a red line.
func (h histogram) SVG() template.HTML {
	const w, ht = 320.0, 90.0
	peak := 1
	for _, c := range h.Bins {
		peak = max(peak, c)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg viewBox="0 0 %g %g" width="%g" height="%g" role="img" aria-label="histogram of %s">`, w, ht+14, w, ht+14, template.HTMLEscapeString(h.Metric))
	bw := w / histBins
	for i, c := range h.Bins {
		bh := ht * float64(c) / float64(peak)
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#4a7bd0"><title>%g–%g: %d</title></rect>`, float64(i)*bw+1, ht-bh, bw-2, bh, h.Edges[i], h.Edges[i+1], c)
	}
	if h.Threshold != nil {
		x := w * (*h.Threshold - h.Min) / (h.Max - h.Min)
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="0" y2="%g" stroke="#d0342c" stroke-width="2"><title>threshold %g</title></line>`, x, x, ht, *h.Threshold)
	}
	fmt.Fprintf(&b, `<text x="0" y="%g" font-size="10">%g</text><text x="%g" y="%g" font-size="10" text-anchor="end">%g</text></svg>`, ht+12, h.Edges[0], w, ht+12, h.Edges[histBins])
	return template.HTML(b.String())
}

// thumbnail returns a JPEG data URL of the item's image, reduced so its
// longest side is thumbSide.
func thumbnail(root string, it Item) (template.URL, error) {
	img, err := loadItemImage(root, it)
	if err != nil {
		return "", err
	}
	src := img.Bounds()
	f := math.Max(float64(src.Dx()), float64(src.Dy())) / thumbSide
	f = math.Max(f, 1)
	w, h := max(1, int(float64(src.Dx())/f)), max(1, int(float64(src.Dy())/f))
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			// Nearest of the box centre: enough for a thumbnail.
			dst.Set(x, y, img.At(src.Min.X+int((float64(x)+0.5)*f), src.Min.Y+int((float64(y)+0.5)*f)))
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, dst, &jpeg.Options{Quality: 80}); err != nil {
		return "", err
	}
	return template.URL("data:image/jpeg;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())), nil
}

func writeMarkdown(w io.Writer, d *reportData) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", d.Title)
	fmt.Fprintf(&b, "Run `%s` of `%s`: %d images", d.Run, d.Pipeline, d.Count)
	if d.ApprovedRate != nil {
		fmt.Fprintf(&b, ", %d approved, %d rejected (%.0f%%)", d.Approved, d.Rejected, *d.ApprovedRate*100)
	}
	b.WriteString(".\n\n")
	if d.Grade != "" {
		fmt.Fprintf(&b, "Grade **%s** (composite %.3f).\n\n", d.Grade, *d.Composite)
	}
	if d.Approve != "" {
		fmt.Fprintf(&b, "Approved when `%s`.\n\n", d.Approve)
	}
	b.WriteString("## Scores\n\n| metric | mean (all) | mean (approved) | threshold |\n|---|---:|---:|---:|\n")
	for _, m := range d.Metrics {
		th := ""
		if t, ok := d.Thresholds[m]; ok {
			th = fmt.Sprint(t)
		}
		ap := ""
		if v, ok := d.MeanApproved[m]; ok {
			ap = fmt.Sprint(v)
		}
		fmt.Fprintf(&b, "| %s | %v | %s | %s |\n", m, d.MeanAll[m], ap, th)
	}
	if len(d.Settings) > 0 {
		b.WriteString("\n## Settings\n\n")
		for _, k := range sortedKeys(d.Settings) {
			fmt.Fprintf(&b, "- %s: %s\n", k, strings.Join(d.Settings[k], ", "))
		}
	}
	list := func(title string, items []reportItem) {
		fmt.Fprintf(&b, "\n## %s\n\n", title)
		for _, it := range items {
			fmt.Fprintf(&b, "- %s%s\n", it.Path, describeScores(it))
		}
	}
	list("Best", d.Best)
	list("Worst", d.Worst)
	b.WriteString("\n## All images\n\n| image | verdict | scores | reason |\n|---|---|---|---|\n")
	for _, it := range d.Items {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", it.Path, it.Verdict, strings.TrimPrefix(describeScores(it), ": "), strings.ReplaceAll(it.Reason, "|", `\|`))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func describeScores(it reportItem) string {
	var parts []string
	for _, m := range sortedKeys(it.Metrics) {
		parts = append(parts, fmt.Sprintf("%s %v", m, it.Metrics[m]))
	}
	if len(parts) == 0 {
		return ""
	}
	return ": " + strings.Join(parts, ", ")
}

// htmlReport is parsed when first used: at start-up it cost every
// command a fifth of a millisecond.
var htmlReport = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("report").Funcs(template.FuncMap{
		"pct":    func(f *float64) string { return fmt.Sprintf("%.0f%%", *f*100) },
		"scores": describeScores,
		"list":   func(it reportItem) string { return strings.TrimPrefix(describeScores(it), ": ") },
		"lookup": func(m map[string]float64, k string) string {
			if v, ok := m[k]; ok {
				return fmt.Sprint(v)
			}
			return ""
		},
	}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#222}
h1{margin-bottom:.2em}.sub{color:#666}
table{border-collapse:collapse}td,th{padding:.25em .7em;border-bottom:1px solid #ddd;text-align:left}
.grid{display:flex;flex-wrap:wrap;gap:12px}.card{width:200px;font-size:12px;overflow-wrap:anywhere}
.card img{width:192px;border:3px solid #ccc;border-radius:4px}
.approved img{border-color:#3a9a4a}.rejected img{border-color:#d0342c}.reason{color:#a0261f}
.hists{display:flex;flex-wrap:wrap;gap:24px}
</style></head><body>
<h1>{{.Title}}</h1>
<p class="sub">Run {{.Run}} of {{.Pipeline}}: {{.Count}} images{{if .ApprovedRate}}, {{.Approved}} approved, {{.Rejected}} rejected ({{pct .ApprovedRate}}){{end}}.
{{if .Grade}}<br>Grade <b>{{.Grade}}</b> (composite {{printf "%.3f" .Composite}}).{{end}}
{{if .Approve}}<br>Approved when <code>{{.Approve}}</code>.{{end}}</p>
<h2>Scores</h2>
<table><tr><th>metric</th><th>mean (all)</th><th>mean (approved)</th><th>threshold</th></tr>
{{range $m := .Metrics}}<tr><td>{{$m}}</td><td>{{index $.MeanAll $m}}</td><td>{{lookup $.MeanApproved $m}}</td><td>{{lookup $.Thresholds $m}}</td></tr>
{{end}}</table>
<h2>Distributions</h2><div class="hists">
{{range .Histograms}}<figure><figcaption>{{.Metric}}</figcaption>{{.SVG}}</figure>{{end}}</div>
{{if .Settings}}<h2>Settings</h2><ul>{{range $k, $v := .Settings}}<li>{{$k}}: {{range $v}}<code>{{.}}</code> {{end}}</li>{{end}}</ul>{{end}}
<h2>Best and worst</h2><table><tr><th>best</th><th>worst</th></tr>
{{range $i, $b := .Best}}<tr><td>{{$b.Path}}{{scores $b}}</td><td>{{with index $.Worst $i}}{{.Path}}{{scores .}}{{end}}</td></tr>
{{end}}</table>
<h2>All images</h2><div class="grid">{{range .Items}}{{template "card" .}}{{end}}</div>
</body></html>
{{define "card"}}<div class="card {{.Verdict}}">{{if .Thumb}}<img src="{{.Thumb}}" alt="{{.Path}}">{{end}}
<div><b>{{.Path}}</b></div><div>{{list .}}</div>{{if .Reason}}<div class="reason">{{.Reason}}</div>{{end}}</div>{{end}}
`))
})
