package main

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/loadprof/loadprof/internal/setting"
	"github.com/loadprof/loadprof/load"
	"github.com/spf13/pflag"
)

// libraryPackages are the packages whose errors name settings by their Go
// names.
var libraryPackages = []string{"load", "bench", "cluster", "payloads", "profile", "report", "servermetrics", "sim"}

// librarySettingNames are the Go setting names in the string literals of
// the library packages' code: every name a library message can carry.
func librarySettingNames(t *testing.T) map[string][]string {
	t.Helper()
	isPackage := map[string]bool{}
	for _, p := range libraryPackages {
		isPackage[p] = true
	}
	found := map[string][]string{}
	fset := token.NewFileSet()
	for _, pkg := range libraryPackages {
		files, err := filepath.Glob(filepath.Join("..", "..", pkg, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no Go files in %s: %v", pkg, err)
		}
		for _, file := range files {
			if strings.HasSuffix(file, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(f, func(n ast.Node) bool {
				lit, ok := n.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					return true
				}
				s, err := strconv.Unquote(lit.Value)
				if err != nil {
					return true
				}
				for _, name := range setting.Names(s) {
					first, rest, _ := strings.Cut(name, ".")
					if isPackage[first] && rest[0] >= 'A' && rest[0] <= 'Z' {
						found[name] = append(found[name], fset.Position(lit.Pos()).String())
					}
				}
				return true
			})
		}
	}
	return found
}

func TestEveryLibrarySettingHasAFlag(t *testing.T) {
	found := librarySettingNames(t)
	if len(found) < 30 {
		t.Fatalf("found only %d setting names in the library: the scan is broken", len(found))
	}
	var missing []string
	for name, where := range found {
		if _, ok := settingFlags[name]; !ok && !settingsWithoutFlags[name] {
			missing = append(missing, name+" (at "+where[0]+")")
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("library settings without a flag, which a user would read as Go names:\n%s", strings.Join(missing, "\n"))
	}
	for name := range settingFlags {
		if _, used := found[name]; !used {
			t.Errorf("settingFlags maps %s, which no library message names", name)
		}
	}
}

func TestEverySettingMapsToAFlagTheCommandsHave(t *testing.T) {
	flags := map[string]bool{}
	runFS, _ := newRunFlags()
	simFS := pflag.NewFlagSet("sim", pflag.ContinueOnError)
	(&simFlags{}).register(simFS, "", "")
	for _, fs := range []*pflag.FlagSet{runFS, simFS} {
		fs.VisitAll(func(f *pflag.Flag) { flags["--"+f.Name] = true })
	}
	flags["--max"] = true  // compare and report
	flags["--join"] = true // worker
	for name, flag := range settingFlags {
		if !flags[flag] {
			t.Errorf("%s maps to %s, which no command has", name, flag)
		}
	}
}

func TestALibraryErrorReadsInFlags(t *testing.T) {
	plan := load.Plan{Rate: -1, Duration: 1}
	err := plan.Check()
	var se *load.SettingError
	if !errors.As(err, &se) || se.Setting != "load.Plan.Rate" || err.Error() != "load.Plan.Rate -1: must be positive" {
		t.Fatalf("Check: %#v", err)
	}
	var b strings.Builder
	printError(&b, "run", err)
	if got := b.String(); got != "loadprof run: --rate -1: must be positive\n" {
		t.Fatalf("printed %q", got)
	}
	b.Reset()
	flagWriter{&b}.Write([]byte("warning: x; bench.Config.Profile.Required stops here instead\n"))
	if got := b.String(); got != "warning: x; --profile-required stops here instead\n" {
		t.Fatalf("warning %q", got)
	}
}

func TestTheDemoSaysALibraryErrorInFlags(t *testing.T) {
	code, _, stderr := loadprof(t, "demo", "--rate", "1e9")
	if code != exitBadInput || stderr != "loadprof demo: --rate 1e+09: must be at most 1e+07 requests per second\n" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}
