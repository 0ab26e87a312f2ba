package config

import (
	"bufio"
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/knadh/koanf/parsers/toml/v2"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/providers/posflag"
	"github.com/knadh/koanf/providers/rawbytes"
	"github.com/knadh/koanf/v2"
	gotoml "github.com/pelletier/go-toml/v2"
	"github.com/spf13/pflag"
)

//go:embed defaults.toml
var defaultsTOML []byte

// Names outside the key space.
const (
	EnvPrefix  = "LETTERBOX_"
	EnvConfig  = "LETTERBOX_CONFIG" // path of the config file
	FlagConfig = "config"           // --config, overrides EnvConfig
)

// Source names of the layers without a more precise origin.
const sourceDefault = "default"

// Options say where Load finds the layers above the defaults.
type Options struct {
	// Flags is a parsed flag set that AddFlags was called on, or nil. Only
	// flags given on the command line override other layers.
	Flags *pflag.FlagSet
	// Environ is the environment as "KEY=value" strings (os.Environ()).
	Environ []string
	// WorkDir resolves a relative --config and a data_dir that does not come
	// from the file. Empty: the process's working directory.
	WorkDir string
}

// defaultSet is the parsed embedded defaults file.
type defaultSet struct {
	k     *koanf.Koanf
	order []string          // keys as they appear in the file
	help  map[string]string // the comment above each key
}

// defaults parses the embedded defaults. It runs per call so the package
// keeps no state; the file is small.
func defaults() (*defaultSet, error) {
	ds := &defaultSet{k: koanf.New("."), help: make(map[string]string)}
	if err := ds.k.Load(rawbytes.Provider(defaultsTOML), toml.Parser()); err != nil {
		return nil, fmt.Errorf("config: embedded defaults: %w", err)
	}
	var section string
	var comment []string
	sc := bufio.NewScanner(bytes.NewReader(defaultsTOML))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "#"):
			comment = append(comment, strings.TrimSpace(strings.TrimPrefix(line, "#")))
			continue
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]") + "."
		default:
			if name, _, ok := strings.Cut(line, "="); ok {
				key := section + strings.TrimSpace(name)
				ds.order = append(ds.order, key)
				ds.help[key] = strings.Join(comment, " ")
			}
		}
		comment = nil
	}
	return ds, nil
}

// mustDefaults is for callers that cannot fail: the embedded file is fixed
// at build time and a test loads it.
func mustDefaults() *defaultSet {
	ds, err := defaults()
	if err != nil {
		panic(err)
	}
	return ds
}

// Keys returns every configuration key in the order of the defaults file.
func Keys() []string { return mustDefaults().order }

// AddFlags adds --config and one flag per key, typed and defaulted from the
// embedded defaults, to fs.
func AddFlags(fs *pflag.FlagSet) {
	ds := mustDefaults()
	fs.String(FlagConfig, "", "TOML config file (or env "+EnvConfig+")")
	for _, key := range ds.order {
		switch v := ds.k.Get(key).(type) {
		case string:
			fs.String(key, v, ds.help[key])
		case bool:
			fs.Bool(key, v, ds.help[key])
		case int64:
			fs.Int64(key, v, ds.help[key])
		case []any:
			fs.StringSlice(key, ds.k.Strings(key), ds.help[key])
		default:
			panic(fmt.Sprintf("config: default %s has unsupported type %T", key, v))
		}
	}
}

// Load reads every layer, checks each for unknown keys, and decodes and
// validates the result. All problems found are returned together.
func Load(o Options) (*Config, error) {
	wd := o.WorkDir
	if wd == "" {
		var err error
		if wd, err = os.Getwd(); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	ds, err := defaults()
	if err != nil {
		return nil, err
	}
	def := ds.k
	l := &loader{k: koanf.New("."), src: make(map[string]string), known: make(map[string]bool)}
	for _, key := range def.Keys() {
		l.known[key] = true
		l.src[key] = sourceDefault
	}
	if err := l.k.Merge(def); err != nil {
		return nil, fmt.Errorf("config: embedded defaults: %w", err)
	}

	path := l.configPath(o)
	if path != "" {
		if !filepath.IsAbs(path) {
			path = filepath.Join(wd, path)
		}
		fk := koanf.New(".")
		if err := fk.Load(file.Provider(path), toml.Parser()); err != nil {
			return nil, fileError(path, err)
		}
		l.merge(fk, func(string) string { return path })
	}

	envNames := make(map[string]string) // key → variable, for error messages
	ek := koanf.New(".")
	err = ek.Load(env.Provider(".", env.Opt{
		Prefix:      EnvPrefix,
		EnvironFunc: func() []string { return o.Environ },
		TransformFunc: func(name, v string) (string, any) {
			if name == EnvConfig {
				return "", nil
			}
			key := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, EnvPrefix), "__", "."))
			envNames[key] = name
			return key, v
		},
	}), nil)
	if err != nil {
		return nil, fmt.Errorf("config: environment: %w", err)
	}
	l.merge(ek, func(key string) string { return "env " + envNames[key] })

	if o.Flags != nil {
		fk := koanf.New(".")
		// Without a Koanf to consult, posflag passes only flags that were
		// given, so unset flags never mask the file or the environment.
		err := fk.Load(posflag.ProviderWithFlag(o.Flags, ".", nil, func(f *pflag.Flag) (string, any) {
			if !l.known[f.Name] {
				return "", nil // --config and subcommand flags
			}
			return f.Name, posflag.FlagVal(o.Flags, f)
		}), nil)
		if err != nil {
			return nil, fmt.Errorf("config: flags: %w", err)
		}
		l.merge(fk, func(key string) string { return "flag --" + key })
	}
	if len(l.errs) > 0 {
		return nil, errors.Join(l.errs...)
	}

	// data_dir from the file is relative to the file; from anywhere else
	// (the embedded default, env, flag) it is relative to the working dir.
	base := wd
	if path != "" && l.src["data_dir"] == path {
		base = filepath.Dir(path)
	}
	d := &decoder{k: l.k, src: l.src, used: make(map[string]bool)}
	cfg := d.decode(base)
	if len(d.errs) > 0 {
		return nil, errors.Join(d.errs...)
	}
	cfg.File = path
	cfg.sources = l.src
	return cfg, nil
}

// loader merges layers and remembers where each key's value came from.
type loader struct {
	k     *koanf.Koanf
	src   map[string]string
	known map[string]bool
	errs  []error
}

func (l *loader) configPath(o Options) string {
	if o.Flags != nil {
		if f := o.Flags.Lookup(FlagConfig); f != nil && f.Changed {
			return f.Value.String()
		}
	}
	for _, kv := range o.Environ {
		if v, ok := strings.CutPrefix(kv, EnvConfig+"="); ok {
			return v
		}
	}
	return ""
}

func (l *loader) merge(layer *koanf.Koanf, source func(key string) string) {
	bad := false
	for _, key := range layer.Keys() {
		if m, ok := layer.Get(key).(map[string]any); ok && len(m) == 0 && l.isSection(key) {
			continue // an empty [section] sets nothing
		}
		if !l.known[key] {
			l.errs = append(l.errs, &Error{Key: key, Source: source(key), Err: errUnknownKey})
			bad = true
		}
	}
	if bad {
		return
	}
	for _, key := range layer.Keys() {
		l.src[key] = source(key)
	}
	if err := l.k.Merge(layer); err != nil {
		l.errs = append(l.errs, fmt.Errorf("config: %w", err))
	}
}

func (l *loader) isSection(key string) bool {
	for k := range l.known {
		if strings.HasPrefix(k, key+".") {
			return true
		}
	}
	return false
}

var errUnknownKey = errors.New("unknown key")

// fileError adds the line and column go-toml knows to a parse error.
func fileError(path string, err error) error {
	var de *gotoml.DecodeError
	if errors.As(err, &de) {
		row, col := de.Position()
		return fmt.Errorf("config: %s:%d:%d: %w", path, row, col, err)
	}
	return fmt.Errorf("config: %s: %w", path, err)
}

// Error is a bad or unknown key. Source is "default", a file path, "env
// LETTERBOX_…" or "flag --…".
type Error struct {
	Key    string
	Source string
	Value  any // nil for an unknown key
	Err    error
}

func (e *Error) Error() string {
	if e.Value == nil {
		return fmt.Sprintf("config: %s (from %s): %v", e.Key, e.Source, e.Err)
	}
	v := fmt.Sprintf("%v", e.Value)
	if s, ok := e.Value.(string); ok {
		v = fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("config: %s = %s (from %s): %v", e.Key, v, e.Source, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }
