package cli

import (
	"flag"
	"fmt"
	"strings"

	"github.com/blockllm/blockllm-go/blockllm"
)

// Selection holds BlockLLM's selection flags: --blockllm-preset and the switches that
// override it one at a time (--check-every, --trigger, --penalty, --budget,
// --first-block, --keep-moments, --mask, --score, --exclude, --heads; --eligible is in
// Methods). Empty or zero values mean "the preset's".
type Selection struct {
	Preset      string
	CheckEvery  int
	Trigger     string
	Penalty     string
	Budget      string
	FirstBlock  string
	KeepMoments bool
	Mask        float64
	Score       string
	Exclude     string
	Heads       string

	set map[string]bool
}

// Register defines the flags on fs.
func (s *Selection) Register(fs *flag.FlagSet) {
	fs.StringVar(&s.Preset, "blockllm-preset", blockllm.PresetDefault, "BlockLLM selection settings: default (this project's) or reference (the authors'\n"+
		"released code: exp(freq/step) penalty, trigger checked every 1000 steps (500 for finetune) with a strict\n"+
		"comparison, block under the budget, random first block, names with embed or lm_head excluded);\n"+
		"the flags below override it one at a time")
	fs.IntVar(&s.CheckEvery, "check-every", 0, "BlockLLM: steps between reselection-trigger checks (0: the preset's)")
	fs.StringVar(&s.Trigger, "trigger", "", "BlockLLM trigger comparison of the recent and overall mean loss: ge (>=) or gt (>, the authors')")
	fs.StringVar(&s.Penalty, "penalty", "", "BlockLLM visit penalty: count (1+times chosen), exp-freq (the authors'), none")
	fs.StringVar(&s.Budget, "budget", "", "BlockLLM budget rule for the tensor that reaches it: over (taken) or under (left out, the authors')")
	fs.StringVar(&s.FirstBlock, "first-block", "", "BlockLLM first block: norm (a selection pass) or random (the authors')")
	fs.BoolVar(&s.KeepMoments, "keep-moments", false, "BlockLLM: keep the Adam moments of tensors that stay in the block across a reselection")
	fs.Float64Var(&s.Mask, "mask", 0, "BlockLLM within-tensor mask: keep Adam state for this fraction of each chosen tensor's\n"+
		"coordinates (top |gradient|; 0: dense)")
	fs.StringVar(&s.Score, "score", "", "BlockLLM tensor score: norm (gradient 2-norm) or per-element (norm / sqrt(numel))")
	fs.StringVar(&s.Exclude, "exclude", "", "BlockLLM: comma-separated regular expressions removing parameters from the eligible set")
	fs.StringVar(&s.Heads, "heads", "", "BlockLLM task heads: always (trained outside the budget) or eligible (chosen like the rest, the authors')")
}

// Parsed records which flags fs's command line set (call it after fs.Parse).
func (s *Selection) Parsed(fs *flag.FlagSet) {
	s.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { s.set[f.Name] = true })
}

// IsSet reports whether the named flag was on the command line.
func (s *Selection) IsSet(name string) bool { return s.set[name] }

// Reference reports whether the reference preset is chosen.
func (s *Selection) Reference() bool { return s.Preset == blockllm.PresetReference }

// Apply sets c's selection settings: the preset's (refCheckEvery is the reference
// preset's check interval for this command), then each flag given. eligible is
// --eligible (set only when given, or by a command default for the default preset).
func (s *Selection) Apply(c blockllm.BlockLLMConfig, refCheckEvery int, eligible []string) (blockllm.BlockLLMConfig, error) {
	c, err := c.WithPreset(s.Preset, refCheckEvery)
	if err != nil {
		return c, fmt.Errorf("--blockllm-preset: %w", err)
	}
	if len(eligible) > 0 {
		c.Eligible = eligible
	}
	if s.CheckEvery < 0 {
		return c, fmt.Errorf("--check-every %d must not be negative", s.CheckEvery)
	}
	if s.CheckEvery > 0 {
		c.CheckEvery = s.CheckEvery
	}
	switch s.Trigger {
	case "":
	case "ge", ">=":
		c.StrictTrigger = false
	case "gt", ">":
		c.StrictTrigger = true
	default:
		return c, fmt.Errorf("--trigger %q: want ge or gt", s.Trigger)
	}
	if s.Penalty != "" {
		if c.Penalty, err = blockllm.ParsePenalty(s.Penalty); err != nil {
			return c, fmt.Errorf("--penalty: %w", err)
		}
	}
	if s.Budget != "" {
		if c.Budget, err = blockllm.ParseBudgetRule(s.Budget); err != nil {
			return c, fmt.Errorf("--budget: %w", err)
		}
	}
	if s.FirstBlock != "" {
		if c.FirstBlock, err = blockllm.ParseFirstBlock(s.FirstBlock); err != nil {
			return c, fmt.Errorf("--first-block: %w", err)
		}
	}
	if s.IsSet("keep-moments") {
		c.KeepMoments = s.KeepMoments
	}
	if s.IsSet("mask") {
		if s.Mask < 0 || s.Mask >= 1 {
			return c, fmt.Errorf("--mask %g outside [0, 1)", s.Mask)
		}
		c.MaskFraction = s.Mask
	}
	if s.Score != "" {
		if c.Score, err = blockllm.ParseScoreKind(s.Score); err != nil {
			return c, fmt.Errorf("--score: %w", err)
		}
	}
	if s.IsSet("exclude") {
		c.Exclude = SplitList(s.Exclude)
	}
	switch s.Heads {
	case "":
	case "always":
		c.HeadsEligible = false
	case "eligible":
		c.HeadsEligible = true
	default:
		return c, fmt.Errorf("--heads %q: want always or eligible", s.Heads)
	}
	return c, nil
}

// Describe lists the settings c differs from the default preset in, as flags
// ("--penalty exp-freq --budget under"), for labels and logs.
func Describe(c blockllm.BlockLLMConfig) string { return strings.Join(DescribeFlags(c), " ") }

// DescribeFlags is Describe as a list ("--penalty exp-freq", "--trigger gt", ...).
func DescribeFlags(c blockllm.BlockLLMConfig) []string {
	d, _ := blockllm.BlockLLMConfig{}.WithPreset(blockllm.PresetDefault, 0)
	var parts []string
	add := func(differs bool, s string) {
		if differs {
			parts = append(parts, s)
		}
	}
	add(c.CheckEvery != d.CheckEvery && c.CheckEvery > 1, fmt.Sprintf("--check-every %d", c.CheckEvery))
	add(c.StrictTrigger, "--trigger gt")
	add(c.Penalty != d.Penalty, "--penalty "+c.Penalty.String())
	add(c.Budget != d.Budget, "--budget "+c.Budget.String())
	add(c.FirstBlock != d.FirstBlock, "--first-block "+c.FirstBlock.String())
	add(c.KeepMoments, "--keep-moments")
	add(c.MaskFraction > 0, fmt.Sprintf("--mask %g", c.MaskFraction))
	add(c.Score != d.Score, "--score "+c.Score.String())
	add(len(c.Exclude) > 0, "--exclude "+strings.Join(c.Exclude, ","))
	add(c.HeadsEligible, "--heads eligible")
	return parts
}
