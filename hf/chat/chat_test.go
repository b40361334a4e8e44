package chat

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const testdata = "../../testdata/chat"

type renderCase struct {
	Name                string         `json:"name"`
	Dir                 string         `json:"dir"`
	Messages            []Message      `json:"messages"`
	AddGenerationPrompt bool           `json:"add_generation_prompt"`
	Kwargs              map[string]any `json:"kwargs"`
	Expected            string         `json:"expected"`
}

// TestPublishedTemplates renders the published chat templates of
// Meta-Llama-3-8B-Instruct (tokenizer_config.json), Qwen2.5-7B-Instruct
// (ChatML) and Llama-3.2-1B-Instruct (chat_template.jinja) to the strings
// apply_chat_template produces (testdata/chat/cases.json: written by hand
// from the templates, confirmed with Jinja2 by testdata/chat/reference.py).
func TestPublishedTemplates(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(testdata, "cases.json"))
	require.NoError(t, err)
	var cases []renderCase
	require.NoError(t, json.Unmarshal(data, &cases))
	require.GreaterOrEqual(t, len(cases), 8)
	for _, c := range cases {
		tmpl, err := Load(filepath.Join(testdata, c.Dir), Options{})
		require.NoError(t, err, c.Name)
		tmpl.Vars = c.Kwargs
		got, err := tmpl.Render(c.Messages, c.AddGenerationPrompt)
		require.NoError(t, err, c.Name)
		require.Equal(t, c.Expected, got, c.Name)
	}
}

func TestSpecialTokensAndSources(t *testing.T) {
	c, err := ReadConfig(filepath.Join(testdata, "qwen2.5"))
	require.NoError(t, err)
	require.Equal(t, map[string]string{"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}, c.SpecialTokens, "null bos_token/unk_token are absent")
	require.Equal(t, []string{DefaultName}, c.Names())

	// AddedToken objects, and chat_template.jinja next to a config without a template.
	tmpl, err := Load(filepath.Join(testdata, "llama3.2"), Options{})
	require.NoError(t, err)
	require.Equal(t, "<|begin_of_text|>", tmpl.BOS())
	require.Equal(t, "<|eot_id|>", tmpl.EOS())
	require.True(t, strings.HasSuffix(tmpl.Source, "chat_template.jinja"))

	tmpl, err = Load(filepath.Join(testdata, "llama3"), Options{})
	require.NoError(t, err)
	require.Equal(t, "<|eot_id|>", tmpl.EOS())
	require.Contains(t, tmpl.Source, "tokenizer_config.json")
}

func writeFiles(t *testing.T, files map[string]string) string {
	dir := t.TempDir()
	for name, text := range files {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
	}
	return dir
}

func TestTemplateSelection(t *testing.T) {
	msgs := []Message{{"user", "hi"}}
	// A list of named templates: "default" is used unless another is named.
	dir := writeFiles(t, map[string]string{"tokenizer_config.json": `{"eos_token": "</s>", "chat_template": [
		{"name": "default", "template": "D{{ messages[0].content }}{{ eos_token }}"},
		{"name": "tool_use", "template": "T{{ messages[0].content }}"}]}`})
	for name, want := range map[string]string{"": "Dhi</s>", "default": "Dhi</s>", "tool_use": "Thi"} {
		tmpl, err := Load(dir, Options{Name: name})
		require.NoError(t, err)
		got, err := tmpl.Render(msgs, false)
		require.NoError(t, err)
		require.Equal(t, want, got, name)
	}
	_, err := Load(dir, Options{Name: "rag"})
	require.ErrorContains(t, err, `no chat template named "rag" (it has default, tool_use)`)

	// Several templates and no default.
	dir = writeFiles(t, map[string]string{"tokenizer_config.json": `{"chat_template": [{"name": "a", "template": "A"}, {"name": "b", "template": "B"}]}`})
	_, err = Load(dir, Options{})
	require.ErrorContains(t, err, `several chat templates (a, b) and none named "default"`)

	// chat_template.jinja wins over the config's template, as in transformers;
	// additional_chat_templates/NAME.jinja adds named ones.
	dir = writeFiles(t, map[string]string{
		"tokenizer_config.json":               `{"chat_template": "config", "bos_token": {"content": "<s>", "lstrip": false}}`,
		"chat_template.jinja":                 "{{ bos_token }}file:{{ messages[0].content }}\n",
		"additional_chat_templates/rag.jinja": "rag",
	})
	tmpl, err := Load(dir, Options{})
	require.NoError(t, err)
	got, err := tmpl.Render(msgs, false)
	require.NoError(t, err)
	require.Equal(t, "<s>file:hi", got, "Jinja drops the single trailing newline")
	tmpl, err = New("a\r\nb{{ 'c\r\nd' }}\n\n", "crlf", nil)
	require.NoError(t, err)
	got, _ = tmpl.Render(msgs, false)
	require.Equal(t, "a\nbc\nd\n", got, "Jinja normalizes line breaks and drops one trailing newline")
	tmpl, err = Load(dir, Options{Name: "rag"})
	require.NoError(t, err)
	got, _ = tmpl.Render(msgs, false)
	require.Equal(t, "rag", got)

	// An override file replaces the template but keeps the special tokens.
	override := filepath.Join(t.TempDir(), "mine.jinja")
	require.NoError(t, os.WriteFile(override, []byte("{{ bos_token }}[{{ messages[0].content }}]"), 0o644))
	tmpl, err = Load(dir, Options{File: override})
	require.NoError(t, err)
	got, _ = tmpl.Render(msgs, false)
	require.Equal(t, "<s>[hi]", got)
	tmpl, err = Load("", Options{File: override})
	require.NoError(t, err)
	got, _ = tmpl.Render(msgs, false)
	require.Equal(t, "[hi]", got, "undefined bos_token renders empty")

	// No template at all; bad config files.
	_, err = Load(writeFiles(t, map[string]string{"tokenizer_config.json": `{"eos_token": "</s>"}`}), Options{})
	require.ErrorContains(t, err, "has no chat template")
	_, err = Load(t.TempDir(), Options{})
	require.ErrorContains(t, err, "neither tokenizer_config.json nor chat_template.jinja")
	_, err = Load(writeFiles(t, map[string]string{"tokenizer_config.json": `{"chat_template": 3}`}), Options{})
	require.ErrorContains(t, err, `key "chat_template" must be a string or a list`)
	_, err = Load(writeFiles(t, map[string]string{"tokenizer_config.json": `{"eos_token": 3, "chat_template": "x"}`}), Options{})
	require.ErrorContains(t, err, `key "eos_token"`)
	_, err = Load(writeFiles(t, map[string]string{"tokenizer_config.json": `{"chat_template": "{% for x in %}"}`}), Options{})
	require.ErrorContains(t, err, "tokenizer_config.json: chat_template")
}

// mixtralTemplate is Mixtral-8x7B-Instruct-v0.1's chat template, which
// raises an exception when roles do not alternate.
const mixtralTemplate = "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"

func TestRaiseException(t *testing.T) {
	tmpl, err := New(mixtralTemplate, "mixtral", map[string]string{"bos_token": "<s>", "eos_token": "</s>"})
	require.NoError(t, err)
	got, err := tmpl.Render([]Message{{"user", "Hello, how are you?"}, {"assistant", "I'm doing great. How can I help you today?"}, {"user", "I'd like to show off how chat templating works!"}}, false)
	require.NoError(t, err)
	// The template's published example (huggingface.js jinja tests).
	require.Equal(t, "<s>[INST] Hello, how are you? [/INST]I'm doing great. How can I help you today?</s>[INST] I'd like to show off how chat templating works! [/INST]", got)

	_, err = tmpl.Render([]Message{{"user", "a"}, {"user", "b"}}, false)
	require.ErrorContains(t, err, "Conversation roles must alternate user/assistant/user/assistant/...")
	require.ErrorContains(t, err, "mixtral: rendering 2 messages (roles user, user)")
	_, err = tmpl.Render([]Message{{"user", "a"}, {"system", "s"}}, false)
	require.ErrorContains(t, err, "Only user and assistant roles are supported!")
}

func TestEnvironment(t *testing.T) {
	render := func(src string, msgs []Message) string {
		tmpl, err := New(src, "test", nil)
		require.NoError(t, err)
		out, err := tmpl.Render(msgs, false)
		require.NoError(t, err)
		return out
	}
	// tojson as transformers defines it: json.dumps(ensure_ascii=False), keys in order.
	require.Equal(t, `[{"role": "user", "content": "héllo <b> \"x\""}]`, render("{{ messages | tojson }}", []Message{{"user", `héllo <b> "x"`}}))
	// Loop controls.
	require.Equal(t, "ab", render("{% for m in messages %}{% if m.role == 'system' %}{% continue %}{% endif %}{{ m.content }}{% if m.content == 'b' %}{% break %}{% endif %}{% endfor %}",
		[]Message{{"system", "s"}, {"user", "a"}, {"user", "b"}, {"user", "c"}}))
	// trim_blocks and lstrip_blocks.
	require.Equal(t, "x\ny\n", render("{% for m in messages %}\n    {% if true %}\n{{ m.content }}\n    {% endif %}\n{% endfor %}", []Message{{"user", "x"}, {"user", "y"}}))
	// strftime_now (Llama 3.2 uses it when date_string is not given).
	tmpl, err := Load(filepath.Join(testdata, "llama3.2"), Options{})
	require.NoError(t, err)
	before := time.Now().Format("02 Jan 2006")
	out, err := tmpl.Render([]Message{{"user", "hi"}}, true)
	require.NoError(t, err)
	after := time.Now().Format("02 Jan 2006")
	require.True(t, strings.Contains(out, "Today Date: "+before+"\n") || strings.Contains(out, "Today Date: "+after+"\n"), out)
}

func TestRenderSpans(t *testing.T) {
	conv := []Message{
		{"user", "Hi!"}, {"assistant", "Hello! How can I help?"},
		{"user", "Tell me a joke."}, {"assistant", "  Why did the chicken cross the road?\n"},
	}
	want := map[string][]string{
		"llama3":   {"Hello! How can I help?<|eot_id|>", "Why did the chicken cross the road?<|eot_id|>"},
		"qwen2.5":  {"Hello! How can I help?<|im_end|>", "  Why did the chicken cross the road?\n<|im_end|>"},
		"llama3.2": {"Hello! How can I help?<|eot_id|>", "Why did the chicken cross the road?<|eot_id|>"},
	}
	for dir, w := range want {
		tmpl, err := Load(filepath.Join(testdata, dir), Options{})
		require.NoError(t, err)
		tmpl.Vars = map[string]any{"date_string": "26 Jul 2024"}
		text, spans, err := tmpl.RenderSpans(conv)
		require.NoError(t, err, dir)
		full, err := tmpl.Render(conv, false)
		require.NoError(t, err)
		require.Equal(t, full, text)
		require.Len(t, spans, 2, dir)
		for k, sp := range spans {
			require.Equal(t, w[k], text[sp.Start:sp.End], dir)
			require.Equal(t, 2*k+1, sp.Message)
		}
		// Everything before the first span is the prompt: the template's
		// system part and the user turn with the assistant header.
		prompt, err := tmpl.Render(conv[:1], true)
		require.NoError(t, err)
		require.Equal(t, prompt, text[:spans[0].Start], dir)
	}

	// A template that renders earlier assistant turns differently once
	// later turns exist cannot be masked incrementally.
	tmpl, err := New("{% for m in messages %}{% if m.role == 'assistant' and not loop.last %}[elided]{% else %}{{ m.content }}{% endif %}{% endfor %}", "elide", nil)
	require.NoError(t, err)
	_, _, err = tmpl.RenderSpans(conv)
	require.ErrorContains(t, err, "does not render conversations incrementally")
}
