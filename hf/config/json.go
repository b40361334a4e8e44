package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Error is the error type of this package. Path is the config file, if one
// was read; Key is the JSON key at fault, if any.
type Error struct {
	Path string
	Key  string
	Msg  string
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("config: ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	if e.Key != "" {
		fmt.Fprintf(&b, "key %q: ", e.Key)
	}
	b.WriteString(e.Msg)
	return b.String()
}

func keyErr(key, format string, args ...any) *Error {
	return &Error{Key: key, Msg: fmt.Sprintf(format, args...)}
}

// withPath sets the path on err if it is an *Error without one.
func withPath(err error, path string) error {
	if e, ok := err.(*Error); ok && e.Path == "" {
		e2 := *e
		e2.Path = path
		return &e2
	}
	return err
}

// FileName is the name of the config file in a model directory.
const FileName = "config.json"

// resolve returns the config file for a path that is a directory or a file.
func resolve(pathOrDir string) string {
	if st, err := os.Stat(pathOrDir); err == nil && st.IsDir() {
		return filepath.Join(pathOrDir, FileName)
	}
	return pathOrDir
}

// LoadJSON reads the config file at pathOrDir (a config.json file or a
// directory holding one) and returns its top-level keys as raw JSON. It
// checks only that the file is one JSON object.
func LoadJSON(pathOrDir string) (map[string]json.RawMessage, error) {
	path := resolve(pathOrDir)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	m, err := parseObject(data)
	if err != nil {
		return nil, withPath(err, path)
	}
	return m, nil
}

// parseObject decodes data as one JSON object.
func parseObject(data []byte) (map[string]json.RawMessage, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, &Error{Msg: "not a JSON object"}
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &m); err != nil {
		var se *json.SyntaxError
		if ok := asSyntax(err, &se); ok {
			line, col := lineCol(trimmed, se.Offset)
			return nil, &Error{Msg: fmt.Sprintf("invalid JSON at line %d, column %d: %v", line, col, err)}
		}
		return nil, &Error{Msg: fmt.Sprintf("invalid JSON: %v", err)}
	}
	return m, nil
}

func asSyntax(err error, se **json.SyntaxError) bool {
	e, ok := err.(*json.SyntaxError)
	if ok {
		*se = e
	}
	return ok
}

// lineCol converts a byte offset to a 1-based line and column.
func lineCol(data []byte, off int64) (int, int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	line := 1 + bytes.Count(data[:off], []byte{'\n'})
	col := int(off) - bytes.LastIndexByte(data[:off], '\n')
	return line, col
}

// object reads typed values out of a decoded JSON object, recording which
// keys were used so that the rest can be kept as extras.
type object struct {
	m    map[string]json.RawMessage
	used map[string]bool
}

func newObject(m map[string]json.RawMessage) *object {
	return &object{m: m, used: make(map[string]bool)}
}

// get returns the raw value of key and marks it used; ok is false if the key
// is absent or null.
func (o *object) get(key string) (json.RawMessage, bool) {
	v, ok := o.m[key]
	if !ok {
		return nil, false
	}
	o.used[key] = true
	if string(bytes.TrimSpace(v)) == "null" {
		return nil, false
	}
	return v, true
}

// present reports whether key is present (even if null).
func (o *object) present(key string) bool {
	_, ok := o.m[key]
	return ok
}

// rest returns the keys not used, or nil if none.
func (o *object) rest() map[string]json.RawMessage {
	var out map[string]json.RawMessage
	for k, v := range o.m {
		if o.used[k] {
			continue
		}
		if out == nil {
			out = make(map[string]json.RawMessage)
		}
		out[k] = v
	}
	return out
}

func describe(raw json.RawMessage) string {
	s := string(bytes.TrimSpace(raw))
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return s
}

// parseInt decodes raw as an integer; integral floats such as 8192.0 are
// accepted.
func parseInt(key string, raw json.RawMessage) (int, error) {
	s := string(bytes.TrimSpace(raw))
	if v, err := strconv.ParseInt(s, 10, 64); err == nil && v >= math.MinInt32 && v <= math.MaxInt32 {
		return int(v), nil
	}
	if len(s) > 0 && (s[0] == '-' || (s[0] >= '0' && s[0] <= '9')) {
		if f, err := strconv.ParseFloat(s, 64); err == nil && f == math.Trunc(f) && math.Abs(f) <= math.MaxInt32 {
			return int(f), nil
		}
	}
	return 0, keyErr(key, "want an integer, got %s", describe(raw))
}

func (o *object) int(key string, dst *int) error {
	raw, ok := o.get(key)
	if !ok {
		return nil
	}
	v, err := parseInt(key, raw)
	if err != nil {
		return err
	}
	*dst = v
	return nil
}

// intPtr decodes an optional integer: null or absent leaves dst nil.
func (o *object) intPtr(key string, dst **int) error {
	raw, ok := o.get(key)
	if !ok {
		return nil
	}
	v, err := parseInt(key, raw)
	if err != nil {
		return err
	}
	*dst = &v
	return nil
}

func parseFloat(key string, raw json.RawMessage) (float64, error) {
	s := string(bytes.TrimSpace(raw))
	if len(s) > 0 && (s[0] == '-' || (s[0] >= '0' && s[0] <= '9')) {
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return f, nil
		}
	}
	return 0, keyErr(key, "want a number, got %s", describe(raw))
}

func (o *object) float(key string, dst *float64) error {
	raw, ok := o.get(key)
	if !ok {
		return nil
	}
	v, err := parseFloat(key, raw)
	if err != nil {
		return err
	}
	*dst = v
	return nil
}

func (o *object) floatPtr(key string, dst **float64) error {
	raw, ok := o.get(key)
	if !ok {
		return nil
	}
	v, err := parseFloat(key, raw)
	if err != nil {
		return err
	}
	*dst = &v
	return nil
}

func (o *object) bool(key string, dst *bool) error {
	raw, ok := o.get(key)
	if !ok {
		return nil
	}
	switch string(bytes.TrimSpace(raw)) {
	case "true":
		*dst = true
	case "false":
		*dst = false
	default:
		return keyErr(key, "want true or false, got %s", describe(raw))
	}
	return nil
}

func (o *object) string(key string, dst *string) error {
	raw, ok := o.get(key)
	if !ok {
		return nil
	}
	var s string
	if bytes.TrimSpace(raw)[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return keyErr(key, "want a string, got %s", describe(raw))
	}
	*dst = s
	return nil
}

func (o *object) strings(key string, dst *[]string) error {
	raw, ok := o.get(key)
	if !ok {
		return nil
	}
	var s []string
	if err := json.Unmarshal(raw, &s); err != nil {
		return keyErr(key, "want an array of strings, got %s", describe(raw))
	}
	*dst = s
	return nil
}

// pyFloat is a float64 that marshals as Python's repr does (10000.0, 1e-05,
// 0.02), so written configs read back as floats in Python.
type pyFloat float64

// MarshalJSON implements json.Marshaler.
func (f pyFloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil, fmt.Errorf("config: cannot write %v as JSON", v)
	}
	return []byte(formatPyFloat(v)), nil
}

// formatPyFloat formats v like Python's float repr: the shortest digits that
// round-trip, positional notation when the decimal exponent is in [-4, 16),
// otherwise scientific with at least two exponent digits.
func formatPyFloat(v float64) string {
	if v == 0 {
		if math.Signbit(v) {
			return "-0.0"
		}
		return "0.0"
	}
	s := strconv.FormatFloat(v, 'e', -1, 64) // d.ddde±XX
	mant, expStr, _ := strings.Cut(s, "e")
	exp, _ := strconv.Atoi(expStr)
	neg := strings.HasPrefix(mant, "-")
	mant = strings.TrimPrefix(mant, "-")
	digits := strings.Replace(mant, ".", "", 1)
	var out string
	if exp >= -4 && exp < 16 {
		if exp >= 0 {
			if len(digits) <= exp+1 {
				out = digits + strings.Repeat("0", exp+1-len(digits)) + ".0"
			} else {
				out = digits[:exp+1] + "." + digits[exp+1:]
			}
		} else {
			out = "0." + strings.Repeat("0", -exp-1) + digits
		}
	} else {
		m := digits[:1]
		if len(digits) > 1 {
			m += "." + digits[1:]
		}
		sign := "+"
		if exp < 0 {
			sign = "-"
			exp = -exp
		}
		out = fmt.Sprintf("%se%s%02d", m, sign, exp)
	}
	if neg {
		out = "-" + out
	}
	return out
}

// marshalConfig writes m as transformers does: two-space indent, sorted
// keys, a trailing newline, no HTML escaping.
func marshalConfig(m map[string]any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return buf.Bytes(), nil
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// writeFile writes data to dir/config.json through a temporary file and a
// rename, creating dir if needed.
func writeFile(dir string, data []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".config.json.tmp*")
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("config: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("config: %w", err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("config: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, FileName)); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// knownDTypes are the dtype strings accepted in dtype / torch_dtype.
var knownDTypes = map[string]bool{"float32": true, "float16": true, "bfloat16": true, "float64": true}

// parseDType reads dtype (v5) or torch_dtype (v4); both present must agree.
func parseDType(o *object) (string, error) {
	var d, td string
	if err := o.string("dtype", &d); err != nil {
		return "", err
	}
	if err := o.string("torch_dtype", &td); err != nil {
		return "", err
	}
	d = strings.TrimPrefix(d, "torch.")
	td = strings.TrimPrefix(td, "torch.")
	if d != "" && td != "" && d != td {
		return "", keyErr("dtype", "%q disagrees with torch_dtype %q", d, td)
	}
	if d == "" {
		d = td
	}
	return d, nil
}

func checkDType(d string) error {
	if d != "" && !knownDTypes[d] {
		return keyErr("dtype", "unknown dtype %q (want float32, bfloat16, float16 or float64)", d)
	}
	return nil
}
