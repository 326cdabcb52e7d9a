package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxFileBytes is the largest config file Load reads.
const MaxFileBytes = 1 << 20

// Source says where a key's effective value came from.
type Source string

// Sources, lowest precedence first.
const (
	SourceDefault Source = "default"
	SourceFile    Source = "file"
	SourceEnv     Source = "env"
	SourceFlag    Source = "flag"
)

// Sources records where each effective value came from.
type Sources struct {
	// File is the config file that was read, or "" when there was none.
	File string
	keys map[string]Source
}

// Of returns the source of the key named name (SourceDefault for a key no
// layer set).
func (s *Sources) Of(name string) Source {
	if s == nil || s.keys[name] == "" {
		return SourceDefault
	}
	return s.keys[name]
}

func (s *Sources) set(name string, src Source) {
	if s.keys == nil {
		s.keys = make(map[string]Source)
	}
	s.keys[name] = src
}

// FieldError is one problem with one key: a value that does not parse, or
// one that Validate rejects.
type FieldError struct {
	Key    string // the key's name, e.g. "heartbeat_grace"
	Source Source // where the bad value came from ("" when not known)
	Msg    string // what is wrong, naming the value and what is allowed
}

// Error formats the problem as "key: message", adding the source of a
// value that came from the file, environment or flags.
func (e *FieldError) Error() string {
	switch e.Source {
	case SourceFile, SourceEnv, SourceFlag:
		return fmt.Sprintf("%s (from %s): %s", e.Key, e.Source, e.Msg)
	default:
		return e.Key + ": " + e.Msg
	}
}

// Load builds the effective configuration from defaults < config file <
// environment < flags. args are command-line flags (every key as
// --flag-name, plus --config PATH); env looks up environment variables (nil
// means none; pass os.Getenv in production). The config file is --config,
// else $MXGATEWAY_CONFIG, else none.
//
// A flag syntax error (or -h, reported as an error wrapping flag.ErrHelp)
// returns a nil Config. Values in the file or environment that do not parse
// are all reported at once, as *FieldError values joined with errors.Join;
// the Config returned alongside holds every value that did parse, so the
// caller may still Validate it to list more problems. Load does not
// validate: call Validate before anything listens.
func Load(args []string, env func(string) string) (*Config, *Sources, error) {
	if env == nil {
		env = func(string) string { return "" }
	}
	fs, flags := newFlagSet(env)
	if err := fs.Parse(args); err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	if fs.NArg() > 0 {
		return nil, nil, fmt.Errorf("config: unexpected argument %q", fs.Arg(0))
	}

	cfg := defaults(env, runtime.GOOS)
	src := &Sources{}
	var errs []error

	path := flags.configFile
	if path == "" {
		path = env(EnvConfigFile)
	}
	if path != "" {
		src.File = path
		data, err := readFile(path)
		if err != nil {
			errs = append(errs, err)
		} else {
			errs = append(errs, applyYAML(&cfg, src, data)...)
		}
	}

	for i := range keys {
		k := &keys[i]
		v := env(k.envName())
		if v == "" {
			continue
		}
		if err := k.set(&cfg, v); err != nil {
			errs = append(errs, &FieldError{Key: k.name, Source: SourceEnv, Msg: err.Error()})
			continue
		}
		src.set(k.name, SourceEnv)
	}

	for _, fv := range flags.set {
		// Flag values were checked by Set during Parse.
		_ = fv.k.set(&cfg, fv.joined())
		src.set(fv.k.name, SourceFlag)
	}
	return &cfg, src, errors.Join(errs...)
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("config file %s: larger than %d bytes", path, MaxFileBytes)
	}
	return data, nil
}

// applyYAML decodes a YAML config file onto cfg. The top level must be a
// mapping of known keys to scalars (or, for list keys, a sequence of
// scalars or a comma-separated string). Every problem is returned.
func applyYAML(cfg *Config, src *Sources, data []byte) (errs []error) {
	defer func() {
		// The decoder reads operator-supplied text; a decoder bug must
		// become an error, not a crash.
		if r := recover(); r != nil {
			errs = append(errs, fmt.Errorf("config file: cannot decode: %v", r))
		}
	}()
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return []error{fmt.Errorf("config file: %w", err)}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil // empty file
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil // only comments
	}
	if root.Kind != yaml.MappingNode {
		return []error{fmt.Errorf("config file: line %d: the top level must be a mapping of keys to values", root.Line)}
	}
	seen := make(map[string]bool)
	for i := 0; i+1 < len(root.Content); i += 2 {
		kn, vn := root.Content[i], root.Content[i+1]
		if kn.Kind != yaml.ScalarNode {
			errs = append(errs, fmt.Errorf("config file: line %d: keys must be plain names", kn.Line))
			continue
		}
		k := lookupKey(kn.Value)
		if k == nil {
			errs = append(errs, fmt.Errorf("config file: line %d: unknown key %q", kn.Line, kn.Value))
			continue
		}
		if seen[k.name] {
			errs = append(errs, fmt.Errorf("config file: line %d: key %q given twice", kn.Line, k.name))
			continue
		}
		seen[k.name] = true
		if vn.Kind == yaml.AliasNode && vn.Alias != nil {
			vn = vn.Alias
		}
		text, ok, err := nodeText(k, vn)
		if err != nil {
			errs = append(errs, &FieldError{Key: k.name, Source: SourceFile, Msg: fmt.Sprintf("line %d: %v", vn.Line, err)})
			continue
		}
		if !ok {
			continue // null: keep the lower layer
		}
		if err := k.set(cfg, text); err != nil {
			errs = append(errs, &FieldError{Key: k.name, Source: SourceFile, Msg: fmt.Sprintf("line %d: %v", vn.Line, err)})
			continue
		}
		src.set(k.name, SourceFile)
	}
	return errs
}

// nodeText returns a value node as the text the key's parser reads. ok is
// false for a null value.
func nodeText(k *key, n *yaml.Node) (text string, ok bool, err error) {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "", false, nil
		}
		return n.Value, true, nil
	case yaml.SequenceNode:
		if k.kind != kindList {
			return "", false, errors.New("a list is not allowed here")
		}
		items := make([]string, 0, len(n.Content))
		for _, item := range n.Content {
			if item.Kind != yaml.ScalarNode {
				return "", false, errors.New("list items must be plain values")
			}
			if strings.Contains(item.Value, ",") {
				return "", false, fmt.Errorf("list item %q contains a comma", item.Value)
			}
			items = append(items, item.Value)
		}
		return strings.Join(items, ","), true, nil
	default:
		return "", false, errors.New("a mapping is not allowed here")
	}
}

// flagValue is the flag.Value of one key. Set checks the syntax at once
// (so that flag errors name the flag) and keeps the raw text; Load applies
// it above the file and the environment.
type flagValue struct {
	k       *key
	raw     []string
	scratch Config
	onSet   func(*flagValue)
}

func (f *flagValue) String() string {
	if f == nil || len(f.raw) == 0 {
		return ""
	}
	return f.joined()
}

func (f *flagValue) Set(s string) error {
	if err := f.k.set(&f.scratch, s); err != nil {
		return err
	}
	if f.k.kind == kindList {
		f.raw = append(f.raw, s) // repeated list flags add up
	} else {
		f.raw = []string{s}
	}
	f.onSet(f)
	return nil
}

func (f *flagValue) joined() string { return strings.Join(f.raw, ",") }

type flagSet struct {
	configFile string
	set        []*flagValue // in first-set order
}

// newFlagSet builds the flag set of every key plus --config. Its output is
// discarded: callers print Usage themselves.
func newFlagSet(env func(string) string) (*flag.FlagSet, *flagSet) {
	fs := flag.NewFlagSet("mxgateway", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	out := &flagSet{}
	fs.StringVar(&out.configFile, "config", "", "config file (YAML); also "+EnvConfigFile)
	for i := range keys {
		k := &keys[i]
		fv := &flagValue{k: k, scratch: defaults(env, runtime.GOOS)}
		fv.onSet = func(f *flagValue) {
			for _, have := range out.set {
				if have == f {
					return
				}
			}
			out.set = append(out.set, f)
		}
		fs.Var(fv, k.flagName(), k.help)
	}
	return fs, out
}

// Usage writes the flags Load accepts, with defaults and environment
// variable names.
func Usage(w io.Writer) {
	fmt.Fprintf(w, "  --config PATH\n        config file (YAML); env %s\n", EnvConfigFile)
	for _, ki := range Keys() {
		def := ki.Default
		if def == "" {
			def = `""`
		}
		fmt.Fprintf(w, "  --%s %s\n        %s (default %s; env %s)\n", ki.Flag, ki.Type, ki.Help, def, ki.Env)
	}
}
