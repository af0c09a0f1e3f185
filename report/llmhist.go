package report

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// LLMHistograms keeps an OpenAI-compatible target's stream histograms
// (encoded as Result.Histogram is, in us) so that merge, compare and the
// .hgrm files work from the recorded values, not from the rounded
// figures of ttft_ms and the others.
type LLMHistograms struct {
	TTFT string `json:"ttft"`
	ITL  string `json:"itl"`
	TPOT string `json:"tpot"`
	E2E  string `json:"e2e"`
	// TimedOutputTokens is the output of the streams in the histograms,
	// which output_tokens_per_s divides by the steady span; a merge adds
	// them and divides by the merged span.
	TimedOutputTokens int64 `json:"timed_output_tokens"`
	// OutputRate holds each timed stream's output tokens/s (its output
	// over its end-to-end latency) in thousandths, behind
	// output_tokens_per_s_per_request; empty in results written before
	// it was kept.
	OutputRate string `json:"output_rate,omitempty"`
}

// SetOutputRate encodes the per-request output rates (see
// load.LLMStats.OutputRate).
func (h *LLMHistograms) SetOutputRate(rate *hdrhistogram.Histogram) error {
	enc, err := EncodeHistogram(rate)
	if err != nil {
		return err
	}
	h.OutputRate = enc
	return nil
}

// RateStatsOf is output_tokens_per_s_per_request from its histogram:
// tokens/s (the histogram holds thousandths, which StatsOf's ms
// conversion divides back).
func RateStatsOf(rate *hdrhistogram.Histogram) Stats { return StatsOf(rate) }

// LLMSlice is the stream figures of the steady requests on one side of the
// profile window (llm_window, llm_outside), with their histograms.
type LLMSlice struct {
	Requests     int64         `json:"requests"`
	TTFT         Stats         `json:"ttft_ms"`
	ITL          Stats         `json:"itl_ms"`
	TPOT         Stats         `json:"tpot_ms"`
	E2E          Stats         `json:"e2e_ms"`
	OutputTokens int64         `json:"output_tokens"`
	Histograms   LLMHistograms `json:"histograms"`
}

// LLMKinds names the four stream histograms in the order files and tables
// use.
var LLMKinds = []string{"ttft", "itl", "tpot", "e2e"}

// EncodeLLMHistograms encodes the four histograms (ttft, itl, tpot, e2e).
func EncodeLLMHistograms(ttft, itl, tpot, e2e *hdrhistogram.Histogram, timedOutput int64) (LLMHistograms, error) {
	out := LLMHistograms{TimedOutputTokens: timedOutput}
	for i, h := range []*hdrhistogram.Histogram{ttft, itl, tpot, e2e} {
		enc, err := EncodeHistogram(h)
		if err != nil {
			return LLMHistograms{}, err
		}
		*out.field(LLMKinds[i]) = enc
	}
	return out, nil
}

func (h *LLMHistograms) field(kind string) *string {
	switch kind {
	case "ttft":
		return &h.TTFT
	case "itl":
		return &h.ITL
	case "tpot":
		return &h.TPOT
	default:
		return &h.E2E
	}
}

// Decode returns the four histograms by kind (ttft, itl, tpot, e2e).
func (h *LLMHistograms) Decode() (map[string]*hdrhistogram.Histogram, error) {
	out := map[string]*hdrhistogram.Histogram{}
	for _, k := range LLMKinds {
		enc := *h.field(k)
		if enc == "" {
			return nil, fmt.Errorf("no %q histogram", k)
		}
		d, err := DecodeHistogram(enc)
		if err != nil {
			return nil, fmt.Errorf("%q histogram: %w", k, err)
		}
		out[k] = d
	}
	return out, nil
}

// NewLLMSlice summarises one side of the window from its histograms.
func NewLLMSlice(requests, outputTokens int64, hs LLMHistograms) (*LLMSlice, error) {
	d, err := hs.Decode()
	if err != nil {
		return nil, err
	}
	return &LLMSlice{Requests: requests, OutputTokens: outputTokens, Histograms: hs,
		TTFT: StatsOf(d["ttft"]), ITL: StatsOf(d["itl"]), TPOT: StatsOf(d["tpot"]), E2E: StatsOf(d["e2e"])}, nil
}

// llmAcc adds up the stream histograms of many results.
type llmAcc struct {
	hists             map[string]*hdrhistogram.Histogram
	timedOutput       int64
	requests, outputs int64
	// rate adds the inputs' per-request output rates; nil once an input
	// lacks them (the merge then has none).
	rate     *hdrhistogram.Histogram
	rateGone bool
}

func (a *llmAcc) add(hs *LLMHistograms, src string) error {
	d, err := hs.Decode()
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	if a.hists == nil {
		a.hists = d
	} else {
		for _, k := range LLMKinds {
			if dropped := a.hists[k].Merge(d[k]); dropped > 0 {
				return fmt.Errorf("%s: %d %s values outside the histogram's range", src, dropped, k)
			}
		}
	}
	a.timedOutput += hs.TimedOutputTokens
	switch {
	case a.rateGone:
	case hs.OutputRate == "":
		a.rate, a.rateGone = nil, true
	default:
		r, err := DecodeHistogram(hs.OutputRate)
		if err != nil {
			return fmt.Errorf("%s: output_rate histogram: %w", src, err)
		}
		if a.rate == nil {
			a.rate = r
		} else if dropped := a.rate.Merge(r); dropped > 0 {
			return fmt.Errorf("%s: %d output_rate values outside the histogram's range", src, dropped)
		}
	}
	return nil
}

func (a *llmAcc) encoded() (LLMHistograms, error) {
	h := a.hists
	out, err := EncodeLLMHistograms(h["ttft"], h["itl"], h["tpot"], h["e2e"], a.timedOutput)
	if err == nil && a.rate != nil {
		err = out.SetOutputRate(a.rate)
	}
	return out, err
}

// mergeLLM puts the inputs' stream figures in out: exact from their
// histograms, the token counts added, output tokens/s over the merged
// steady span. Inputs without stream figures (other targets) are left out
// of them with a note; an LLM result without histograms (written before
// they were kept) makes the merge drop the stream figures, with a note.
func mergeLLM(out *Result, results []*Result, sources []string, span float64) ([]string, error) {
	var all, window, outside llmAcc
	var notes []string
	var llm, without int
	anyWindow := false
	for _, r := range results {
		if r.TTFT != nil {
			llm++
			if r.LLMHistograms == nil {
				without++
			}
			anyWindow = anyWindow || r.LLMWindow != nil
		}
	}
	if llm == 0 {
		return nil, nil
	}
	if without > 0 {
		return []string{fmt.Sprintf("the stream figures (ttft_ms, itl_ms, tpot_ms, e2e_ms, tokens) are left out: %d of the inputs keep no llm_histograms", without)}, nil
	}
	if llm < len(results) {
		notes = append(notes, fmt.Sprintf("the stream figures are those of the %d inputs with an OpenAI-compatible target", llm))
	}
	var outTokens, inTokens, noOutput, usageBelow int64
	for i, r := range results {
		if r.TTFT == nil {
			continue
		}
		if r.StreamsWithoutOutput != nil {
			noOutput += *r.StreamsWithoutOutput
		}
		if r.UsageBelowChunks != nil {
			usageBelow += *r.UsageBelowChunks
		}
		if err := all.add(r.LLMHistograms, sources[i]); err != nil {
			return nil, err
		}
		if r.OutputTokens != nil {
			outTokens += *r.OutputTokens
		}
		if r.InputTokens != nil {
			inTokens += *r.InputTokens
		}
		if !anyWindow {
			continue
		}
		in, rest := r.LLMWindow, r.LLMOutside
		if in == nil {
			// No window in this run: all its steady streams were outside.
			rest = &LLMSlice{Requests: r.Requests, Histograms: *r.LLMHistograms}
			if r.OutputTokens != nil {
				rest.OutputTokens = *r.OutputTokens
			}
		}
		for _, side := range []struct {
			acc *llmAcc
			s   *LLMSlice
		}{{&window, in}, {&outside, rest}} {
			if side.s == nil {
				continue
			}
			if err := side.acc.add(&side.s.Histograms, sources[i]); err != nil {
				return nil, err
			}
			side.acc.requests += side.s.Requests
			side.acc.outputs += side.s.OutputTokens
		}
	}
	hs, err := all.encoded()
	if err != nil {
		return nil, err
	}
	out.LLMHistograms = &hs
	ttft, itl, tpot, e2e := StatsOf(all.hists["ttft"]), StatsOf(all.hists["itl"]), StatsOf(all.hists["tpot"]), StatsOf(all.hists["e2e"])
	out.TTFT, out.ITL, out.TPOT, out.E2E = &ttft, &itl, &tpot, &e2e
	out.OutputTokens, out.InputTokens = &outTokens, &inTokens
	if noOutput > 0 {
		out.StreamsWithoutOutput = &noOutput
	}
	if usageBelow > 0 {
		out.UsageBelowChunks = &usageBelow
	}
	var perS float64
	if span > 0 {
		perS = float64(all.timedOutput) / span
	}
	out.OutputTokensPerS = &perS
	if all.rate != nil {
		rate := RateStatsOf(all.rate)
		out.OutputTokensPerSPerRequest = &rate
	}
	for _, side := range []struct {
		acc *llmAcc
		dst **LLMSlice
	}{{&window, &out.LLMWindow}, {&outside, &out.LLMOutside}} {
		if side.acc.hists == nil {
			continue
		}
		enc, err := side.acc.encoded()
		if err != nil {
			return nil, err
		}
		if *side.dst, err = NewLLMSlice(side.acc.requests, side.acc.outputs, enc); err != nil {
			return nil, err
		}
	}
	return notes, nil
}

// checkLLMHistograms checks that a result's stream histograms agree with
// its figures, as Check does for the latency histogram.
func checkLLMHistograms(r *Result) error {
	if r.LLMHistograms == nil {
		return nil
	}
	if r.TTFT == nil {
		return errors.New("\"llm_histograms\" without \"ttft_ms\"")
	}
	d, err := r.LLMHistograms.Decode()
	if err != nil {
		return fmt.Errorf("\"llm_histograms\": %w", err)
	}
	if d["ttft"].TotalCount() != r.TTFT.Count {
		return fmt.Errorf("\"llm_histograms\" ttft holds %d streams, \"ttft_ms\" says %d", d["ttft"].TotalCount(), r.TTFT.Count)
	}
	return nil
}

// LLMHGRMPath is the .hgrm file of one stream histogram beside the
// latency's hgrm: run.hgrm gives run.ttft.hgrm, a name without an
// extension gets .ttft.hgrm added.
func LLMHGRMPath(hgrm, kind string) string {
	ext := filepath.Ext(hgrm)
	if ext == "" || strings.ContainsRune(ext, filepath.Separator) {
		return hgrm + "." + kind + ".hgrm"
	}
	return strings.TrimSuffix(hgrm, ext) + "." + kind + ext
}
