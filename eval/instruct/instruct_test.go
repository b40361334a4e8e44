package instruct

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blockllm/blockllm-go/hf/chat"
	"github.com/blockllm/blockllm-go/hf/tokenizer"
)

func llamaTiny(t testing.TB) *tokenizer.Tokenizer {
	tok, err := tokenizer.Load("../../testdata/hf/llama-tiny-tok/tokenizer.json")
	require.NoError(t, err)
	require.Equal(t, 1, tok.BOS())
	require.Equal(t, 2, tok.EOS())
	return tok
}

// mixtralTemplate is Mixtral-8x7B-Instruct-v0.1's chat template (Llama-2
// style: <s>[INST] user [/INST]reply</s>), whose special tokens the tiny
// Llama tokenizer has.
const mixtralTemplate = "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"

func mixtral(t testing.TB) *chat.Template {
	tmpl, err := chat.New(mixtralTemplate, "mixtral", map[string]string{"bos_token": "<s>", "eos_token": "</s>"})
	require.NoError(t, err)
	return tmpl
}

func write(t testing.TB, name, content string) string {
	p := filepath.Join(t.TempDir(), name)
	data := []byte(content)
	if strings.HasSuffix(name, ".gz") {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write(data)
		zw.Close()
		data = b.Bytes()
	}
	require.NoError(t, os.WriteFile(p, data, 0o644))
	return p
}

// learned returns the ids at learned positions.
func learned(ex Example) []int {
	var out []int
	for i, l := range ex.Labels {
		if l != IgnoreIndex {
			require.Equal(nil, ex.IDs[i], l)
			out = append(out, l)
		}
	}
	return out
}

func TestReadLayouts(t *testing.T) {
	cases := []struct {
		name, content string
		layout        Layout
		check         func(t *testing.T, r []Record)
	}{
		{"alpaca.json", `[
  {"instruction": "Name a color.", "input": "", "output": "Blue."},
  {"instruction": "Add.", "input": "2 and 3", "output": "5"}
]`, Alpaca, func(t *testing.T, r []Record) {
			require.Equal(t, "Name a color.", r[0].Instruction)
			require.Equal(t, "2 and 3", r[1].Input)
			require.Equal(t, 3, r[1].Line)
			require.Equal(t, 1, r[1].Index)
			require.Equal(t, r[1].File+":3 (element 1)", r[1].Where())
		}},
		{"pc.jsonl", "{\"prompt\": \"Q: 2+2?\\nA:\", \"completion\": \" four\"}\n\n{\"prompt\": \"x\", \"completion\": \"y\"}\n", PromptCompletion, func(t *testing.T, r []Record) {
			require.Equal(t, " four", r[0].Completion)
			require.Equal(t, 3, r[1].Line, "blank lines count")
			require.Equal(t, r[1].File+":3", r[1].Where())
		}},
		{"chat.jsonl.gz", `{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}`, Messages, func(t *testing.T, r []Record) {
			require.Equal(t, []chat.Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "Hi"}, {Role: "assistant", Content: "Hello"}}, r[0].Messages)
		}},
		{"sharegpt.json", `[{"conversations": [{"from": "system", "value": "S"}, {"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}, {"from": "user", "value": "Bye"}, {"from": "assistant", "value": "See you"}]}]`, ShareGPT, func(t *testing.T, r []Record) {
			require.Equal(t, []chat.Message{{Role: "system", Content: "S"}, {Role: "user", Content: "Hi"}, {Role: "assistant", Content: "Hello"}, {Role: "user", Content: "Bye"}, {Role: "assistant", Content: "See you"}}, r[0].Messages)
		}},
	}
	for _, c := range cases {
		recs, layout, err := ReadFile(write(t, c.name, c.content))
		require.NoError(t, err, c.name)
		require.Equal(t, c.layout, layout, c.name)
		c.check(t, recs)
	}
}

func TestBadFiles(t *testing.T) {
	cases := []struct{ name, content, want string }{
		{"a.jsonl", `{"instruction": "x", "output": "y"}` + "\n" + `{"instruction": "x"}`, `a.jsonl:2: missing field "output"`},
		{"a.jsonl", `{"instruction": "x", "output": "  "}`, `a.jsonl:1: empty response ("output")`},
		{"a.jsonl", `{"instruction": "x", "output": 3}`, `a.jsonl:1: field "output" must be a string, not a number`},
		{"a.json", "[\n {\"instruction\": \"x\", \"output\": \"y\"},\n {\"instruction\": \"\", \"output\": \"y\"}\n]", `a.json:3 (element 1): empty "instruction"`},
		{"p.jsonl", `{"prompt": "x", "completion": ""}`, `p.jsonl:1: empty response ("completion")`},
		{"p.jsonl", `{"completion": "x"}`, `p.jsonl:1: missing field "prompt"`},
		{"m.jsonl", "\n" + `{"messages": [{"role": "user", "content": "a"}, {"role": "bot", "content": "b"}]}`, `m.jsonl:2: messages[1]: unknown role "bot"`},
		{"m.jsonl", `{"messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "b"}]}`, `m.jsonl:1: messages[0]: role "assistant" where "user" was expected`},
		{"m.jsonl", `{"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}`, `m.jsonl:1: messages[1]: role "user" where "assistant" was expected`},
		{"m.jsonl", `{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": ""}]}`, `m.jsonl:1: messages[1]: empty assistant response`},
		{"m.jsonl", `{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "a"}]}`, `m.jsonl:1: field "messages" has no assistant turn`},
		{"m.jsonl", `{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]}`, `messages[2]: the conversation ends with a user message that has no assistant reply`},
		{"m.jsonl", `{"messages": [{"role": "user", "content": "a"}, {"role": "system", "content": "b"}]}`, `messages[1]: a system message may only come first`},
		{"m.jsonl", `{"messages": [{"role": "user"}]}`, `messages[0]: missing field "content"`},
		{"m.jsonl", `{"messages": [{"role": "user", "content": [{"type": "text"}]}]}`, `messages[0]: field "content" must be a string, not an array`},
		{"m.jsonl", `{"messages": "hi"}`, `field "messages" must be an array of objects, not a string`},
		{"s.json", `[{"conversations": [{"from": "human", "value": "a"}, {"from": "bing", "value": "b"}]}]`, `s.json:1 (element 0): conversations[1]: unknown from "bing"`},
		{"s.json", `[{"conversations": [{"from": "human", "value": "a"}]}]`, `conversations" has no assistant turn`},
		{"mix.jsonl", `{"instruction": "x", "output": "y"}` + "\n" + `{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}`, `mix.jsonl:2: record has the messages layout but the file's first record has the alpaca layout`},
		{"u.jsonl", `{"question": "x", "answer": "y"}`, `u.jsonl:1: unknown record layout (keys "answer", "question")`},
		{"j.jsonl", `{"instruction": "x", "output": "y"}` + "\n" + `{"instruction": "x", `, `j.jsonl:2: invalid JSON`},
		{"n.jsonl", `{"instruction": "x", "output": "y"}` + "\n" + `["x"]`, `n.jsonl:2: a record must be a JSON object, not array`},
		{"n.json", `["x"]`, `n.json:1 (element 0): a record must be a JSON object, not string`},
		{"e.json", `[]`, `e.json: no records`},
		{"e.jsonl", "\n\n", `e.jsonl: no records`},
		{"t.json", `[{"instruction": "x", "output": "y"}`, `t.json: after element 0`},
	}
	for _, c := range cases {
		p := write(t, c.name, c.content)
		_, _, err := ReadFile(p)
		require.Error(t, err, c.content)
		require.Contains(t, err.Error(), c.want, c.content)
		require.True(t, strings.HasPrefix(err.Error(), "instruct: "+filepath.Dir(p)), err.Error())
	}
	_, err := ReadFiles([]string{filepath.Join(t.TempDir(), "missing.json")})
	require.ErrorContains(t, err, "missing.json")
}

// TestMaskAlpaca: the Stanford Alpaca prompt, checked by hand, is masked out
// exactly; the response "Blue." and EOS are learned.
func TestMaskAlpaca(t *testing.T) {
	tok := llamaTiny(t)
	enc := &Encoder{Tokenizer: tok}
	rec := Record{Layout: Alpaca, Instruction: "Name a color.", Output: "Blue.", File: "x", Line: 1, Index: -1}
	const prompt = "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nName a color.\n\n### Response:"
	require.Equal(t, prompt, StanfordAlpaca.Format(rec.Instruction, rec.Input))
	ex, err := enc.Encode(&rec)
	require.NoError(t, err)
	// Tokens of the tiny Llama tokenizer: ... "▁R" "es" "p" "on" "se" ":" | "B" "l" "ue" "." </s>
	require.Equal(t, []int{950, 923, 702, 932, 2}, learned(ex))
	require.Equal(t, []int{950, 923, 702, 932, 2}, ex.IDs[len(ex.IDs)-5:], "the learned positions are the last five")
	p, err := tok.Encode(prompt, true)
	require.NoError(t, err)
	require.Equal(t, p.IDs, ex.IDs[:len(ex.IDs)-5], "everything before is the prompt, <s> first")
	require.Equal(t, 1, ex.IDs[0])
	s, err := tok.Decode(learned(ex), false)
	require.NoError(t, err)
	require.Equal(t, "Blue.</s>", s)

	// The input variant.
	rec.Input = "red or green"
	require.Equal(t, "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\nName a color.\n\n### Input:\nred or green\n\n### Response:",
		StanfordAlpaca.Format(rec.Instruction, rec.Input))
	ex, err = enc.Encode(&rec)
	require.NoError(t, err)
	require.Equal(t, []int{950, 923, 702, 932, 2}, learned(ex))
	// The newline variant puts "\n" before the response: "<0x0A>" is prompt.
	enc.Alpaca = AlpacaNewline
	ex, err = enc.Encode(&rec)
	require.NoError(t, err)
	require.Equal(t, 13, ex.IDs[len(ex.IDs)-6])
	require.Equal(t, IgnoreIndex, ex.Labels[len(ex.IDs)-6])
	s, _ = tok.Decode(learned(ex), false)
	require.Equal(t, "Blue.</s>", s)
}

// TestMaskPromptCompletion: "Q: 2+2?\nA:" + " four" -> ... ":" | "▁f" "our" </s>.
func TestMaskPromptCompletion(t *testing.T) {
	tok := llamaTiny(t)
	ex, err := (&Encoder{Tokenizer: tok}).Encode(&Record{Layout: PromptCompletion, Prompt: "Q: 2+2?\nA:", Completion: " four"})
	require.NoError(t, err)
	// <s> "▁Q" ":" "▁" "2" "+" "2" "?" "<0x0A>" "A" ":" | "▁f" "our" </s>
	require.Equal(t, []int{1, 667, 951, 913, 972, 1003, 972, 963, 13, 943, 951, 280, 462, 2}, ex.IDs)
	m := IgnoreIndex
	require.Equal(t, []int{m, m, m, m, m, m, m, m, m, m, m, 280, 462, 2}, ex.Labels)
}

// TestMaskChat: with a Llama-2-style template only the assistant replies
// and the </s> after each are learned:
// <s>[INST] Hi there [/INST]Hello friend</s>[INST] Bye [/INST]See you</s>.
func TestMaskChat(t *testing.T) {
	tok := llamaTiny(t)
	enc := &Encoder{Tokenizer: tok, Template: mixtral(t)}
	msgs := []chat.Message{{Role: "user", Content: "Hi there"}, {Role: "assistant", Content: "Hello friend"}, {Role: "user", Content: "Bye"}, {Role: "assistant", Content: "See you"}}
	want := []int{955, 459, 916, 894, 2, 944, 889, 305, 2} // "H" "ell" "o" "▁friend" </s>  "S" "ee" "▁you" </s>
	for _, layout := range []Layout{Messages, ShareGPT} {
		ex, err := enc.Encode(&Record{Layout: layout, Messages: msgs, File: "c", Line: 1, Index: -1})
		require.NoError(t, err)
		require.Equal(t, want, learned(ex))
		require.Equal(t, 1, ex.IDs[0], "the template's <s>, and no second one")
		require.NotEqual(t, 1, ex.IDs[1])
		// The learned positions are two runs: the first reply and the second.
		var runs [][2]int
		for i, l := range ex.Labels {
			if l == IgnoreIndex {
				continue
			}
			if len(runs) > 0 && runs[len(runs)-1][1] == i {
				runs[len(runs)-1][1] = i + 1
			} else {
				runs = append(runs, [2]int{i, i + 1})
			}
		}
		require.Len(t, runs, 2)
		require.Equal(t, len(ex.IDs), runs[1][1], "the last reply ends the example")
		s, _ := tok.Decode(ex.IDs[:runs[0][0]], false)
		require.Equal(t, "<s> [INST] Hi there [/INST]", s, "(the Llama decoder shows the ▁ after <s> as a space)")
		s, _ = tok.Decode(ex.IDs[runs[0][1]:runs[1][0]], false)
		require.Equal(t, "[INST] Bye [/INST]", s)
	}
	// A chat record without a template, and a template that rejects it.
	_, err := (&Encoder{Tokenizer: tok}).Encode(&Record{Layout: Messages, Messages: msgs, File: "c.jsonl", Line: 4, Index: -1})
	require.ErrorContains(t, err, "c.jsonl:4: a messages record needs a chat template")
	_, err = enc.Encode(&Record{Layout: Messages, Messages: []chat.Message{{Role: "system", Content: "s"}, {Role: "user", Content: "a"}, {Role: "assistant", Content: "b"}}, File: "c.jsonl", Line: 7, Index: -1})
	require.ErrorContains(t, err, "c.jsonl:7:")
	require.ErrorContains(t, err, "Conversation roles must alternate")
}

// TestMaskChatML checks a ChatML template (Qwen2.5's, with a system
// message) on a tokenizer that lacks its special tokens: the learned
// positions still cover exactly "reply<|im_end|>" of each assistant turn.
func TestMaskChatML(t *testing.T) {
	tok := llamaTiny(t)
	tmpl, err := chat.Load("../../testdata/chat/qwen2.5", chat.Options{})
	require.NoError(t, err)
	enc := &Encoder{Tokenizer: tok, Template: tmpl}
	ex, err := enc.Encode(&Record{Layout: Messages, Messages: []chat.Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "Hi"}, {Role: "assistant", Content: "Hello"}}})
	require.NoError(t, err)
	first := slices.IndexFunc(ex.Labels, func(l int) bool { return l != IgnoreIndex })
	s, _ := tok.Decode(ex.IDs[:first], false)
	require.Equal(t, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", s)
	s, _ = tok.Decode(learned(ex), false)
	require.Equal(t, "Hello<|im_end|>", s)
	s, _ = tok.Decode(ex.IDs[first+len(learned(ex)):], false)
	require.Equal(t, "\n", s, "the newline after <|im_end|> is not learned")
}

func TestTruncate(t *testing.T) {
	tok := llamaTiny(t)
	rec := Record{Layout: PromptCompletion, Prompt: "Q: 2+2?\nA:", Completion: " four four four four four four four four"}
	full, err := (&Encoder{Tokenizer: tok}).Encode(&rec)
	require.NoError(t, err)
	require.Equal(t, 11, slices.IndexFunc(full.Labels, func(l int) bool { return l != IgnoreIndex }))
	require.Equal(t, 28, len(full.IDs))

	// The prompt (11 tokens) fits with room for the response: cut the end.
	ex, err := (&Encoder{Tokenizer: tok, MaxLen: 16}).Encode(&rec)
	require.NoError(t, err)
	require.True(t, ex.Truncated)
	require.False(t, ex.PromptCut)
	require.Equal(t, full.IDs[:16], ex.IDs)
	require.Equal(t, full.Labels[:16], ex.Labels)

	// 11 prompt tokens + MaxLen/4 = 3 response tokens do not fit in 12: the
	// prompt loses its start (after <s>), the response keeps 3 tokens.
	ex, err = (&Encoder{Tokenizer: tok, MaxLen: 12}).Encode(&rec)
	require.NoError(t, err)
	require.True(t, ex.Truncated && ex.PromptCut)
	require.Len(t, ex.IDs, 12)
	want := append([]int{1}, full.IDs[3:11]...)
	want = append(want, full.IDs[11:14]...)
	require.Equal(t, want, ex.IDs)
	require.Equal(t, full.Labels[11:14], ex.Labels[9:])
	require.Equal(t, 3, ex.ResponseTokens())

	// MinResponse overrides the quarter.
	ex, err = (&Encoder{Tokenizer: tok, MaxLen: 12, MinResponse: 6}).Encode(&rec)
	require.NoError(t, err)
	require.Equal(t, 6, ex.ResponseTokens())
	require.Equal(t, 1, ex.IDs[0])

	// Short examples are left alone; EncodeAll counts the cut ones.
	short := Record{Layout: PromptCompletion, Prompt: "x", Completion: "y"}
	exs, st, err := (&Encoder{Tokenizer: tok, MaxLen: 12}).EncodeAll([]Record{rec, short, rec})
	require.NoError(t, err)
	require.Len(t, exs, 3)
	require.False(t, exs[1].Truncated)
	require.Equal(t, Stats{Examples: 3, Truncated: 2, PromptCut: 2, Tokens: 24 + len(exs[1].IDs), ResponseTokens: 6 + exs[1].ResponseTokens()}, st)
}

func TestPack(t *testing.T) {
	mk := func(n, tag int) Example {
		ex := Example{IDs: make([]int, n), Labels: make([]int, n)}
		for i := range ex.IDs {
			ex.IDs[i] = tag
			ex.Labels[i] = IgnoreIndex
			if i == n-1 {
				ex.Labels[i] = tag
			}
		}
		return ex
	}
	exs := []Example{mk(5, 10), mk(4, 20), mk(3, 30), mk(2, 40), mk(1, 50)}
	seqs, err := Pack(exs, 6)
	require.NoError(t, err)
	// Best-fit decreasing: 5 | 4 | 3, then 2 into the sequence with 2 free, 1 into the one with 1 free.
	require.Len(t, seqs, 3)
	require.Equal(t, []int{0, 4}, seqs[0].Examples)
	require.Equal(t, []int{1, 3}, seqs[1].Examples)
	require.Equal(t, []int{2}, seqs[2].Examples)
	require.Equal(t, []int{10, 10, 10, 10, 10, 50}, seqs[0].IDs)
	m := IgnoreIndex
	require.Equal(t, []int{m, m, m, m, 10, 50}, seqs[0].Labels, "labels stay per example")
	require.Equal(t, []int{0, 5}, seqs[0].Starts)
	require.Equal(t, []int{0, 1, 2, 3, 0, 1}, seqs[1].PositionIDs())

	// Every example exactly once, no sequence over the length.
	tok := llamaTiny(t)
	recs, err := DemoFortunes(DemoOptions{PerTopic: 10})
	require.NoError(t, err)
	all, _, err := (&Encoder{Tokenizer: tok, MaxLen: 128}).EncodeAll(recs)
	require.NoError(t, err)
	seqs, err = Pack(all, 128)
	require.NoError(t, err)
	seen := make([]int, len(all))
	total := 0
	for _, s := range seqs {
		require.LessOrEqual(t, len(s.IDs), 128)
		for k, i := range s.Examples {
			seen[i]++
			require.Equal(t, all[i].IDs, s.IDs[s.Starts[k]:s.Starts[k]+len(all[i].IDs)])
			require.Equal(t, all[i].Labels, s.Labels[s.Starts[k]:s.Starts[k]+len(all[i].IDs)])
		}
		total += len(s.IDs)
	}
	for i, n := range seen {
		require.Equal(t, 1, n, "example %d", i)
	}
	require.Less(t, len(seqs)*128-total, len(seqs)*128/10, "packing leaves under 10% empty")
	_, err = Pack([]Example{mk(7, 1)}, 6)
	require.ErrorContains(t, err, "longer than the packing length 6")
}

func TestSplit(t *testing.T) {
	recs, err := DemoFortunes(DemoOptions{})
	require.NoError(t, err)
	train, val := Split(recs, 0.1, 0)
	require.Equal(t, len(recs), len(train)+len(val))
	require.InDelta(t, 0.1, float64(len(val))/float64(len(recs)), 0.02)
	// The assignment depends on the content only.
	rev := slices.Clone(recs)
	slices.Reverse(rev)
	for i := range rev {
		rev[i].Line, rev[i].File = 0, "elsewhere"
	}
	_, val2 := Split(rev, 0.1, 0)
	slices.Reverse(val2)
	require.Equal(t, len(val), len(val2))
	for i := range val {
		require.Equal(t, val[i].key(), val2[i].key())
	}
	_, val3 := Split(recs, 0.1, 1)
	require.NotEqual(t, val[0].key(), val3[0].key(), "another seed, another split")
	_, none := Split(recs, 0, 0)
	require.Empty(t, none)
}

func TestDemoFortunes(t *testing.T) {
	recs, err := DemoFortunes(DemoOptions{})
	require.NoError(t, err)
	require.Len(t, recs, 2998)
	again, err := DemoFortunes(DemoOptions{})
	require.NoError(t, err)
	require.Equal(t, recs, again, "deterministic")
	topics := map[string]int{}
	for _, r := range recs {
		require.Equal(t, Alpaca, r.Layout)
		require.LessOrEqual(t, len(r.Output), 240)
		require.NotEmpty(t, strings.TrimSpace(r.Output))
		found := false
		for cat, topic := range demoTopics {
			for _, f := range demoInstructions {
				if r.Instruction == strings.Replace(f, "%s", topic, 1) {
					topics[cat]++
					found = true
				}
			}
		}
		require.True(t, found, r.Instruction)
	}
	require.Equal(t, "Give me a quotation about life.", recs[0].Instruction)
	require.Equal(t, "\"The chain which can be yanked is not the eternal chain.\"\n\t\t-- G. Fitch", recs[0].Output)
	love := 0
	for _, r := range recs {
		if strings.HasSuffix(r.Instruction, " love.") {
			love++
		}
	}
	require.Equal(t, 100, love, "the love category has more than 100 short fortunes")

	// The demo trains through a chat template too.
	c := AsChat(recs[0])
	require.Equal(t, []chat.Message{{Role: "user", Content: recs[0].Instruction}, {Role: "assistant", Content: recs[0].Output}}, c.Messages)
	ex, err := (&Encoder{Tokenizer: llamaTiny(t), Template: mixtral(t)}).Encode(&c)
	require.NoError(t, err)
	s, _ := llamaTiny(t).Decode(learned(ex), false)
	require.Equal(t, recs[0].Output+"</s>", s)
}
