// Package chat renders Hugging Face chat templates: the Jinja template that a
// model's tokenizer_config.json (or chat_template.jinja) carries to turn a
// list of messages into the text the model was trained on, as transformers'
// tokenizer.apply_chat_template(messages, tokenize=False) does.
//
// Templates are compiled with github.com/ardanlabs/jinja, a pure-Go Jinja
// engine written for chat templates. Its environment is the one transformers
// sets up: trim_blocks and lstrip_blocks on, the loop controls ({% break %},
// {% continue %}), the raise_exception and strftime_now globals and a tojson
// filter that keeps non-ASCII characters. The template sees messages,
// add_generation_prompt, the tokenizer's special tokens (bos_token,
// eos_token, unk_token, pad_token, ... as strings) and any extra variables
// (Template.Vars), as transformers passes its **kwargs.
//
// Template.RenderSpans also finds where each assistant turn lies in the
// rendered text, for training with the loss on the assistant turns only.
package chat

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ardanlabs/jinja"
)

// Message is one turn of a conversation: Role is "system", "user",
// "assistant" (or another role the template knows, such as "tool").
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// DefaultName is the template that transformers picks when a tokenizer has
// several named ones.
const DefaultName = "default"

// Config is what a tokenizer directory says about chat templates.
type Config struct {
	// Templates maps template names to their text. A single template (a
	// string chat_template, or chat_template.jinja) is named DefaultName.
	Templates map[string]string
	// Sources maps template names to where they were read from.
	Sources map[string]string
	// SpecialTokens holds the special tokens of tokenizer_config.json by
	// key (bos_token, eos_token, unk_token, pad_token, sep_token,
	// cls_token, mask_token), as strings; null ones are absent.
	SpecialTokens map[string]string
}

// specialKeys are the special-token entries of tokenizer_config.json that
// transformers passes to chat templates (its special_tokens_map).
var specialKeys = []string{"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"}

// ReadConfig reads dir/tokenizer_config.json (if present), the chat templates
// it holds (chat_template: a string, or a list of {"name", "template"}),
// dir/chat_template.jinja (which, as in transformers, takes precedence over
// the config's default template) and dir/additional_chat_templates/*.jinja.
// A directory with neither file is an error; one with no template is not
// (Config.Templates is then empty).
func ReadConfig(dir string) (*Config, error) {
	c := &Config{Templates: map[string]string{}, Sources: map[string]string{}, SpecialTokens: map[string]string{}}
	cfgPath := filepath.Join(dir, "tokenizer_config.json")
	data, err := os.ReadFile(cfgPath)
	haveCfg := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("chat: %v", err)
	}
	if haveCfg {
		if err := c.parseTokenizerConfig(cfgPath, data); err != nil {
			return nil, err
		}
	}
	jinjaPath := filepath.Join(dir, "chat_template.jinja")
	if b, err := os.ReadFile(jinjaPath); err == nil {
		c.Templates[DefaultName] = string(b)
		c.Sources[DefaultName] = jinjaPath
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("chat: %v", err)
	} else if !haveCfg {
		return nil, fmt.Errorf("chat: %s has neither tokenizer_config.json nor chat_template.jinja", dir)
	}
	extra, _ := filepath.Glob(filepath.Join(dir, "additional_chat_templates", "*.jinja"))
	for _, p := range extra {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("chat: %v", err)
		}
		name := strings.TrimSuffix(filepath.Base(p), ".jinja")
		c.Templates[name] = string(b)
		c.Sources[name] = p
	}
	return c, nil
}

func (c *Config) parseTokenizerConfig(path string, data []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return fmt.Errorf("chat: %s: %v", path, err)
	}
	for _, k := range specialKeys {
		v, ok := raw[k]
		if !ok {
			continue
		}
		tok, err := specialToken(v)
		if err != nil {
			return fmt.Errorf("chat: %s: key %q: %v", path, k, err)
		}
		if tok != nil {
			c.SpecialTokens[k] = *tok
		}
	}
	ct, ok := raw["chat_template"]
	if !ok || string(ct) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(ct, &s); err == nil {
		c.Templates[DefaultName] = s
		c.Sources[DefaultName] = path + ": chat_template"
		return nil
	}
	var list []struct {
		Name     *string `json:"name"`
		Template *string `json:"template"`
	}
	if err := json.Unmarshal(ct, &list); err != nil {
		return fmt.Errorf("chat: %s: key \"chat_template\" must be a string or a list of {\"name\", \"template\"} objects", path)
	}
	for i, t := range list {
		if t.Name == nil || t.Template == nil {
			return fmt.Errorf("chat: %s: chat_template[%d] needs \"name\" and \"template\"", path, i)
		}
		c.Templates[*t.Name] = *t.Template
		c.Sources[*t.Name] = fmt.Sprintf("%s: chat_template %q", path, *t.Name)
	}
	return nil
}

// specialToken decodes a special-token entry: a string, an AddedToken object
// {"content": ...}, or null (nil).
func specialToken(v json.RawMessage) (*string, error) {
	if string(v) == "null" {
		return nil, nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		return &s, nil
	}
	var obj struct {
		Content *string `json:"content"`
	}
	if err := json.Unmarshal(v, &obj); err != nil || obj.Content == nil {
		return nil, fmt.Errorf("want a string, null or an object with \"content\"")
	}
	return obj.Content, nil
}

// Names returns the template names, sorted.
func (c *Config) Names() []string {
	out := make([]string, 0, len(c.Templates))
	for n := range c.Templates {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Options selects the template that Load returns.
type Options struct {
	// File, when set, is a template file (Jinja text) used instead of the
	// directory's templates (the commands' --chat-template FILE). The
	// directory still supplies the special tokens.
	File string
	// Name picks one of several named templates; empty means DefaultName.
	Name string
}

// Load returns the chat template of the tokenizer in dir (a model or
// tokenizer directory), as transformers' apply_chat_template picks it, or
// the one in o.File. dir may be empty when o.File is given.
func Load(dir string, o Options) (*Template, error) {
	specials := map[string]string{}
	var cfg *Config
	if dir != "" {
		c, err := ReadConfig(dir)
		if err != nil && o.File == "" {
			return nil, err
		}
		if err == nil {
			cfg = c
			specials = c.SpecialTokens
		}
	}
	if o.File != "" {
		b, err := os.ReadFile(o.File)
		if err != nil {
			return nil, fmt.Errorf("chat: template file: %v", err)
		}
		return New(string(b), o.File, specials)
	}
	name := o.Name
	if name == "" {
		name = DefaultName
	}
	text, ok := cfg.Templates[name]
	if !ok {
		switch {
		case len(cfg.Templates) == 0:
			return nil, fmt.Errorf("chat: %s has no chat template (no chat_template in tokenizer_config.json, no chat_template.jinja); give a template file", dir)
		case o.Name == "":
			return nil, fmt.Errorf("chat: %s has several chat templates (%s) and none named %q; pick one by name", dir, strings.Join(cfg.Names(), ", "), DefaultName)
		default:
			return nil, fmt.Errorf("chat: %s has no chat template named %q (it has %s)", dir, name, strings.Join(cfg.Names(), ", "))
		}
	}
	return New(text, cfg.Sources[name], specials)
}

// Template is a compiled chat template. It is safe for concurrent use once
// Vars is no longer changed.
type Template struct {
	// Source says where the template came from (a file, or a key of a
	// tokenizer_config.json), for error messages.
	Source string
	// Text is the template source.
	Text string
	// SpecialTokens are passed to the template by key (bos_token, ...).
	SpecialTokens map[string]string
	// Vars are extra template variables (transformers' **kwargs of
	// apply_chat_template), such as date_string or enable_thinking.
	Vars map[string]any

	tmpl *jinja.Template
}

// New compiles a template. source names it in errors; specials are the
// special tokens by key (bos_token, eos_token, ...).
func New(text, source string, specials map[string]string) (*Template, error) {
	t, err := jinja.Compile(jinjaSource(text))
	if err != nil {
		return nil, fmt.Errorf("chat: %s: %v", source, err)
	}
	if specials == nil {
		specials = map[string]string{}
	}
	return &Template{Source: source, Text: text, SpecialTokens: specials, tmpl: t}, nil
}

// jinjaSource applies what Jinja2's lexer does to a template before the
// engine sees it: line breaks normalized to "\n" and a single trailing
// newline dropped (keep_trailing_newline is false in transformers).
func jinjaSource(text string) string {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	text = strings.ReplaceAll(text, "\r", "\n")
	return strings.TrimSuffix(text, "\n")
}

// BOS returns the bos_token string ("" when the tokenizer has none).
func (t *Template) BOS() string { return t.SpecialTokens["bos_token"] }

// EOS returns the eos_token string ("" when the tokenizer has none).
func (t *Template) EOS() string { return t.SpecialTokens["eos_token"] }

// Render renders msgs, with the assistant header that starts the model's
// reply appended when addGenerationPrompt is true, as
// apply_chat_template(msgs, tokenize=False, add_generation_prompt=...) does.
// An error raised by the template (raise_exception) is returned with the
// template's message and the roles of msgs.
func (t *Template) Render(msgs []Message, addGenerationPrompt bool) (string, error) {
	data := make(map[string]jinja.Value, len(t.SpecialTokens)+len(t.Vars)+2)
	for k, v := range t.SpecialTokens {
		data[k] = jinja.NewString(v)
	}
	for k, v := range t.Vars {
		data[k] = jinja.FromGoValue(v)
	}
	list := make([]jinja.Value, len(msgs))
	for i, m := range msgs {
		d := jinja.NewDict()
		d.AsDict().Set("role", jinja.NewString(m.Role))
		d.AsDict().Set("content", jinja.NewString(m.Content))
		list[i] = d
	}
	data["messages"] = jinja.NewList(list)
	data["add_generation_prompt"] = jinja.NewBool(addGenerationPrompt)
	out, err := t.tmpl.RenderValues(data)
	if err != nil {
		return "", fmt.Errorf("chat: %s: rendering %d messages (roles %s): %v", t.Source, len(msgs), roles(msgs), err)
	}
	return out, nil
}

func roles(msgs []Message) string {
	r := make([]string, len(msgs))
	for i, m := range msgs {
		r[i] = m.Role
	}
	return strings.Join(r, ", ")
}

// Span is a byte range [Start, End) of a rendered conversation.
type Span struct {
	Start, End int
	// Message is the index of the message the span renders.
	Message int
}

// RenderSpans renders msgs (without a generation prompt) and returns the
// byte span of every assistant turn in the text: what the template adds
// after the generation prompt for that turn, that is the reply and the
// template's end-of-turn marker (<|eot_id|>, <|im_end|>, eos_token...),
// without the whitespace that separates it from the next turn.
//
// The spans come from rendering incrementally: for assistant message i, the
// text of msgs[:i] with the generation prompt must be a prefix of the text of
// msgs[:i+1], which must be a prefix of the whole conversation's. Templates
// that render earlier turns differently once later ones exist (Qwen3's, which
// drops reasoning from earlier assistant turns, is one) fail that check, and
// RenderSpans returns an error rather than a wrong mask. Templates with
// {% generation %} markers render as without them.
func (t *Template) RenderSpans(msgs []Message) (string, []Span, error) {
	full, err := t.Render(msgs, false)
	if err != nil {
		return "", nil, err
	}
	var spans []Span
	for i, m := range msgs {
		if m.Role != "assistant" {
			continue
		}
		prompt, err := t.Render(msgs[:i], true)
		if err != nil {
			return "", nil, err
		}
		upto, err := t.Render(msgs[:i+1], false)
		if err != nil {
			return "", nil, err
		}
		if !strings.HasPrefix(upto, prompt) || !strings.HasPrefix(full, upto) {
			return "", nil, fmt.Errorf("chat: %s: the template does not render conversations incrementally "+
				"(the text of messages 0..%d with the generation prompt is not a prefix of the conversation's), "+
				"so the assistant turns cannot be located; use a template that does", t.Source, i-1)
		}
		end := len(strings.TrimRight(upto, " \t\r\n"))
		if end < len(prompt) {
			end = len(prompt)
		}
		spans = append(spans, Span{Start: len(prompt), End: end, Message: i})
	}
	return full, spans, nil
}
