package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
)

// lbload report turns the -json results of several runs, on several
// servers, into one table: a row per measured thing, a column group per
// server (-label), and the ratio of medians to the -base server. Runs with
// the same label, tag and operation are rounds of one measurement: their
// samples are pooled for min/median/max, and each round's median is shown
// too, so the noise of a shared machine is visible next to the figure.

func runReport(args []string) error {
	fs := flag.NewFlagSet("report", flag.ExitOnError)
	base := fs.String("base", "", "label the ratios divide by (default: the first label met)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: lbload report [-base LABEL] RESULT.json...")
		fs.PrintDefaults()
	}
	fs.Parse(args)
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("no result files")
	}
	rep := newReport()
	for _, name := range fs.Args() {
		if err := rep.addFile(name); err != nil {
			return err
		}
	}
	return rep.write(os.Stdout, *base)
}

// writeJSON writes v to the file name, or to stdout for "-".
func writeJSON(name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if name == "-" {
		_, err = os.Stdout.Write(b)
		return err
	}
	return os.WriteFile(name, b, 0o644)
}

// report gathers figures row by row, in the order rows are first met.
type report struct {
	labels []string
	rows   []*reportRow
	byKey  map[string]*reportRow
}

type reportRow struct {
	tag, title, unit string
	messages         map[string][]uint32
	samples          map[string][]float64 // pooled over rounds
	rounds           map[string][]float64 // one figure per round
	clientCPU        map[string][]float64 // lbload's own CPU ms per op, each round's median
	errors           map[string]int
}

func newReport() *report { return &report{byKey: make(map[string]*reportRow)} }

func (r *report) row(label, tag, name, title, unit string) *reportRow {
	if !slices.Contains(r.labels, label) {
		r.labels = append(r.labels, label)
	}
	key := tag + "\x00" + name
	row := r.byKey[key]
	if row == nil {
		row = &reportRow{tag: tag, title: title, unit: unit, messages: make(map[string][]uint32),
			samples: make(map[string][]float64), rounds: make(map[string][]float64),
			clientCPU: make(map[string][]float64), errors: make(map[string]int)}
		r.byKey[key] = row
		r.rows = append(r.rows, row)
	}
	return row
}

func (r *report) addFile(name string) error {
	b, err := os.ReadFile(name)
	if err != nil {
		return err
	}
	var kind struct {
		Kind string `json:"kind"`
	}
	if err := json.Unmarshal(b, &kind); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	switch kind.Kind {
	case "ops":
		var res opsResult
		if err := json.Unmarshal(b, &res); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		r.addOps(&res)
	case "imap", "pop3":
		var res loadResult
		if err := json.Unmarshal(b, &res); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		r.addLoad(&res)
	default:
		return fmt.Errorf("%s: not an lbload result (kind %q)", name, kind.Kind)
	}
	return nil
}

func (r *report) addOps(res *opsResult) {
	for _, o := range res.Ops {
		title := o.Title
		if title == "" {
			title = o.Command
		}
		row := r.row(res.Label, res.Tag, "ops "+o.Name, title, "ms")
		row.messages[res.Label] = append(row.messages[res.Label], o.Messages)
		row.samples[res.Label] = append(row.samples[res.Label], o.Samples...)
		_, med, _ := summarize(o.Samples)
		row.rounds[res.Label] = append(row.rounds[res.Label], med)
		row.clientCPU[res.Label] = append(row.clientCPU[res.Label], o.ClientCPU)
	}
}

func (r *report) addLoad(res *loadResult) {
	what := res.Kind
	if res.Mode != "" {
		what += " " + res.Mode
	}
	title := fmt.Sprintf("%s, %d clients, %d users", what, res.Conns, res.Users)
	row := r.row(res.Label, res.Tag, fmt.Sprintf("%s %d %d", what, res.Conns, res.Users), title, res.Unit+"s/s")
	row.samples[res.Label] = append(row.samples[res.Label], res.PerSec)
	row.rounds[res.Label] = append(row.rounds[res.Label], res.PerSec)
	row.errors[res.Label] += res.Errors
}

// write prints the table. Each server gets "median (min–max)" and its
// rounds; the ratio is this server's median over base's; "client cpu" is
// what lbload itself spent per op with each server (its floor).
func (r *report) write(w io.Writer, base string) error {
	labels := slices.Clone(r.labels)
	if base != "" {
		i := slices.Index(labels, base)
		if i < 0 {
			return fmt.Errorf("-base %q: no results with that label (have %s)", base, strings.Join(labels, ", "))
		}
		labels = append([]string{base}, slices.Delete(labels, i, i+1)...)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := []string{"run", "measure", "unit", "messages"}
	for _, l := range labels {
		head = append(head, l+" median (min–max)", l+" per round")
	}
	for _, l := range labels[1:] {
		head = append(head, l+"/"+labels[0])
	}
	head = append(head, "client cpu ms", "errors")
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	for _, row := range r.rows {
		cells := []string{row.tag, row.title, row.unit, row.messageCell(labels)}
		for _, l := range labels {
			if len(row.samples[l]) == 0 {
				cells = append(cells, "-", "-")
				continue
			}
			lo, med, hi := summarize(row.samples[l])
			cells = append(cells, fmt.Sprintf("%s (%s–%s)", num(med), num(lo), num(hi)), joinNums(row.rounds[l]))
		}
		_, b, _ := summarize(row.samples[labels[0]])
		for _, l := range labels[1:] {
			_, m, _ := summarize(row.samples[l])
			if b == 0 || m == 0 {
				cells = append(cells, "-")
				continue
			}
			cells = append(cells, ratio(m/b))
		}
		var cpu, errs []string
		for _, l := range labels {
			if len(row.clientCPU[l]) > 0 {
				_, m, _ := summarize(row.clientCPU[l])
				cpu = append(cpu, num(m))
			}
			errs = append(errs, fmt.Sprint(row.errors[l]))
		}
		cells = append(cells, strings.Join(cpu, "/"), strings.Join(errs, "/"))
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	return tw.Flush()
}

// messageCell shows the folder size or answer size once when every run
// agrees, or each label's when they differ.
func (row *reportRow) messageCell(labels []string) string {
	var all []uint32
	var per []string
	for _, l := range labels {
		ms := row.messages[l]
		all = append(all, ms...)
		if len(ms) > 0 {
			per = append(per, fmt.Sprint(ms[0]))
		}
	}
	if len(all) == 0 {
		return ""
	}
	if slices.Min(all) == slices.Max(all) {
		return fmt.Sprint(all[0])
	}
	return strings.Join(per, "/")
}

// ratio prints m/b with two significant digits at least.
func ratio(v float64) string {
	if v < 0.1 {
		return fmt.Sprintf("%.3f×", v)
	}
	return fmt.Sprintf("%.2f×", v)
}

// num prints a figure with about three significant digits.
func num(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func joinNums(vs []float64) string {
	var s []string
	for _, v := range vs {
		s = append(s, num(v))
	}
	return strings.Join(s, " ")
}
