//go:build wine

package wine

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mxgateway/mxgateway/internal/backend/sim"
)

// ciPackages returns the Debian packages the suite needs, from their one
// home: the wine_packages line of .ci/run.
func ciPackages() string {
	b, err := os.ReadFile(filepath.Join(moduleRoot(), ".ci", "run"))
	if err != nil {
		return "(see .ci/run)"
	}
	m := regexp.MustCompile(`wine_packages=\(([^)]*)\)`).FindSubmatch(b)
	if m == nil {
		return "(see .ci/run)"
	}
	return string(m[1])
}

// prefixVersion changes the prefix cache key when the way the prefix is
// built changes (the sources of what goes into it are hashed too).
const prefixVersion = "1"

// wineIDLDir holds oaidl.idl and ocidl.idl (libwine-dev); widl has none of
// its own.
const wineIDLDir = "/usr/include/wine/wine/windows"

// lmxDir is where ArchestrA installs LmxProxy.dll; the stand-in goes there.
const lmxDir = `C:\Program Files (x86)\ArchestrA\Framework\Bin`

// suite is the state of one run: the binaries, the prefix, the Galaxy.
var suite struct {
	root     string // temporary: bin/ and one directory per gateway
	bin      string
	prefix   string
	gateway  string // Linux paths of the Windows binaries
	worker   string
	quirks64 string
	quirks32 string
	// serviceGateway is mxgateway.exe built with the winetest tag.
	serviceGateway string
	galaxy         []byte // the stand-in's Galaxy file
	model          *sim.Model
	tools          map[string]string
	users          *os.File // the prefix's users lock, held shared for the run
}

func TestMain(m *testing.M) {
	start := time.Now()
	if err := setup(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: wine suite set-up: %v\n", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "wine: set-up took %s (prefix %s)\n", time.Since(start).Round(time.Millisecond), suite.prefix)
	code := m.Run()
	if err := goleak.Find(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: goroutines outlived the tests: %v\n", err)
		code = 1
	}
	releasePrefix()
	if code == 0 {
		os.RemoveAll(suite.root)
	} else {
		fmt.Fprintf(os.Stderr, "wine: kept %s for inspection\n", suite.root)
	}
	os.Exit(code)
}

func setup() error {
	if err := findTools(); err != nil {
		return err
	}
	var err error
	if suite.root, err = os.MkdirTemp("", "mxg-wine-"); err != nil {
		return err
	}
	suite.bin = filepath.Join(suite.root, "bin")
	if err := os.MkdirAll(suite.bin, 0o755); err != nil {
		return err
	}
	if suite.model, err = sim.LoadModel("testdata/standin.yaml"); err != nil {
		return err
	}
	if suite.galaxy, err = StandInGalaxy(suite.model); err != nil {
		return err
	}
	if err := buildAll(); err != nil {
		return err
	}
	if suite.prefix, err = preparePrefix(); err != nil {
		return err
	}
	if suite.users, err = usePrefix(suite.prefix); err != nil {
		return err
	}
	// One wineserver for the whole run (-p: it stays when the last process
	// exits), so that each test does not pay for its start-up. It puts
	// itself in the background; exit status 2 means one already runs.
	if err := wineCmd("wineserver", "-p").Run(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			return fmt.Errorf("wineserver -p: %w", err)
		}
	}
	// The first Wine program starts the prefix's own processes (services,
	// winedevice, rpcss, ...), which inherit its standard streams and stay
	// with the persistent wineserver. Start them from a program whose
	// streams are /dev/null, so they never hold a test's output pipe open.
	if err := wineCmd(suite.tools["wine"], winPath(suite.gateway), "version").Run(); err != nil {
		return fmt.Errorf("first Wine program: %w", err)
	}
	return cleanPrefixTemp()
}

func findTools() error {
	if !strings.Contains(ciPackages(), "wine32") {
		return fmt.Errorf(".ci/run has no wine_packages line: CI would not install the suite's packages")
	}
	suite.tools = map[string]string{}
	var missing []string
	for _, t := range []string{"wine", "wineserver", "wineboot", "i686-w64-mingw32-gcc", "x86_64-w64-mingw32-gcc",
		"i686-w64-mingw32-widl"} {
		p, err := exec.LookPath(t)
		if err != nil {
			missing = append(missing, t)
			continue
		}
		suite.tools[t] = p
	}
	// The 64-bit loader: `wine` starts a 64-bit program through start.exe,
	// so its pid would not be the program's (and SIGINT would not reach
	// it). Debian does not put wine64 on the PATH.
	for _, p := range []string{"/usr/lib/wine/wine64", "/usr/lib/x86_64-linux-gnu/wine/wine64"} {
		if _, err := os.Stat(p); err == nil {
			suite.tools["wine64"] = p
			break
		}
	}
	if suite.tools["wine64"] == "" {
		missing = append(missing, "wine64 (the 64-bit loader)")
	}
	if _, err := os.Stat(filepath.Join(wineIDLDir, "oaidl.idl")); err != nil {
		missing = append(missing, filepath.Join(wineIDLDir, "oaidl.idl"))
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s; install with: dpkg --add-architecture i386 && apt-get update && apt-get install %s (as .ci/run does)",
			strings.Join(missing, ", "), ciPackages())
	}
	return nil
}

// moduleRoot is the repository root (the tests run in test/wine).
func moduleRoot() string {
	wd, _ := os.Getwd()
	return filepath.Join(wd, "..", "..")
}

func goTool() string {
	if g := os.Getenv("GO"); g != "" {
		return g
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// buildAll builds the Windows binaries (Go) and the test-only Windows
// parts (C with MinGW, IDL with widl), in parallel.
func buildAll() error {
	out := func(name string) string { return filepath.Join(suite.bin, name) }
	suite.gateway, suite.worker = out("mxgateway.exe"), out("mxworker.exe")
	suite.quirks64, suite.quirks32 = out("quirks64.exe"), out("quirks32.exe")
	suite.serviceGateway = out("mxgateway-svc.exe")
	goBuild := func(arch, dst, pkg string, flags ...string) func() error {
		return func() error {
			cmd := exec.Command(goTool(), append(append([]string{"build", "-trimpath"}, flags...), "-o", dst, pkg)...)
			cmd.Dir = moduleRoot()
			cmd.Env = append(os.Environ(), "GOOS=windows", "GOARCH="+arch, "CGO_ENABLED=0")
			return run(cmd)
		}
	}
	jobs := []func() error{
		goBuild("amd64", suite.gateway, "./cmd/mxgateway"),
		goBuild("386", suite.worker, "./cmd/mxworker"),
		// The service test's gateway: the winetest tag changes only how it
		// recognises the service manager (internal/winsvc/detect_winetest.go).
		goBuild("amd64", suite.serviceGateway, "./cmd/mxgateway", "-tags", "winetest"),
		goBuild("amd64", suite.quirks64, "./test/wine/quirks"),
		goBuild("386", suite.quirks32, "./test/wine/quirks"),
		buildC,
	}
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = j()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// cFlags make the MinGW outputs reproducible (no PE time stamp) and small.
var cFlags = []string{"-O2", "-Wall", "-Wno-unused-parameter", "-s", "-Wl,--no-insert-timestamp", "-static-libgcc"}

func buildC() error {
	gen := filepath.Join(suite.bin, "gen")
	if err := os.MkdirAll(gen, 0o755); err != nil {
		return err
	}
	b := func(name string) string { return filepath.Join(suite.bin, name) }
	gcc := func(tool string, args ...string) error {
		cmd := exec.Command(suite.tools[tool], append(append([]string{}, cFlags...), args...)...)
		cmd.Dir = "."
		return run(cmd)
	}
	steps := []func() error{
		func() error {
			return gcc("x86_64-w64-mingw32-gcc", "-shared", "-o", b("bcryptprimitives64.dll"),
				"shim/bcryptprimitives.c", "shim/pipefix.c", "shim/bcryptprimitives64.def", "-ladvapi32", "-lshell32")
		},
		func() error {
			return gcc("i686-w64-mingw32-gcc", "-shared", "-Wl,--kill-at", "-o", b("bcryptprimitives32.dll"),
				"shim/bcryptprimitives.c", "shim/pipefix.c", "shim/bcryptprimitives32.def", "-ladvapi32", "-lshell32")
		},
		func() error {
			// The type library the worker reads, the C header and the GUIDs.
			return run(exec.Command(suite.tools["i686-w64-mingw32-widl"], "-I", wineIDLDir,
				"-L", filepath.Dir(stdole2()), "-t", "-T", b("MxAccess32.tlb"),
				"-h", "-H", filepath.Join(gen, "lmxproxy.h"), "-u", "-U", filepath.Join(gen, "lmxproxy_i.c"),
				"lmxproxy/lmxproxy.idl"))
		},
		func() error {
			return gcc("i686-w64-mingw32-gcc", "-shared", "-Wl,--kill-at", "-I", gen, "-o", b("LmxProxy.dll"),
				"lmxproxy/server.c", "lmxproxy/galaxy.c", filepath.Join(gen, "lmxproxy_i.c"), "lmxproxy/lmxproxy.def",
				"-loleaut32", "-lole32", "-luuid", "-luser32", "-ladvapi32")
		},
		func() error {
			return gcc("i686-w64-mingw32-gcc", "-mwindows", "-o", b("lmxchild.exe"), "lmxproxy/lmxchild.c")
		},
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return err
		}
	}
	return nil
}

// stdole2 is Wine's 32-bit stdole2.tlb, which widl imports.
func stdole2() string {
	for _, p := range []string{"/usr/lib/i386-linux-gnu/wine/i386-windows/stdole2.tlb", "/usr/lib/wine/i386-windows/stdole2.tlb"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "stdole2.tlb"
}

// run runs cmd with its output in a file, not a pipe: a Wine program can
// leave background processes (wineserver, services) that inherit its
// streams, and a pipe would then never reach EOF.
func run(cmd *exec.Cmd) error {
	out, err := os.CreateTemp("", "mxg-wine-out-")
	if err != nil {
		return err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		b, _ := os.ReadFile(out.Name())
		return fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, b)
	}
	return nil
}

// output is run returning the standard output.
func output(cmd *exec.Cmd) (string, error) {
	out, err := os.CreateTemp("", "mxg-wine-out-")
	if err != nil {
		return "", err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	err = cmd.Run()
	b, _ := os.ReadFile(out.Name())
	return string(b), err
}

// wineEnv is the environment of every Wine process of the suite.
func wineEnv(prefix string) []string {
	return append(os.Environ(),
		"WINEPREFIX="+prefix,
		"WINEARCH=win64",
		"WINEDEBUG=-all",
		// No Mono or Gecko installer prompts (nothing here needs them).
		"WINEDLLOVERRIDES=mscoree,mshtml=",
	)
}

func wineCmd(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = wineEnv(suite.prefix)
	return cmd
}

// prefixKey hashes what the prefix is built from: the Wine version, the
// compilers and every source that goes into it.
func prefixKey() (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "prefix %s\n", prefixVersion)
	for _, v := range [][]string{{"wine", "--version"}, {suite.tools["i686-w64-mingw32-gcc"], "-dumpversion"},
		{suite.tools["x86_64-w64-mingw32-gcc"], "-dumpversion"}} {
		out, err := exec.Command(v[0], v[1:]...).Output()
		if err != nil {
			return "", fmt.Errorf("%s: %w", strings.Join(v, " "), err)
		}
		h.Write(out)
	}
	var files []string
	for _, dir := range []string{"shim", "lmxproxy"} {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return "", err
		}
		for _, e := range ents {
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", f, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// preparePrefix returns the cached prefix for the current key, building
// it first when there is none: wineboot, the ProcessPrng shim in
// system32 and syswow64, the stand-in server in the ArchestrA directory,
// registered with the 32-bit regsvr32 (so under Wow6432Node, with its type
// library). Prefixes of other keys are removed; the cache holds one.
func preparePrefix() (string, error) {
	key, err := prefixKey()
	if err != nil {
		return "", err
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	base := filepath.Join(cache, "mxgateway", "wine")
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(base, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)

	prefix := filepath.Join(base, "prefix-"+key)
	if _, err := os.Stat(filepath.Join(prefix, ".mxgateway-ready")); err == nil {
		return prefix, nil
	}
	ents, _ := os.ReadDir(base)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "prefix-") && !strings.HasSuffix(e.Name(), ".users") {
			removeUnusedPrefix(filepath.Join(base, e.Name()))
		}
	}
	start := time.Now()
	tmp := prefix + ".tmp"
	if err := buildPrefix(tmp); err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	if err := os.Rename(tmp, prefix); err != nil {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "wine: built prefix %s in %s\n", prefix, time.Since(start).Round(time.Millisecond))
	return prefix, nil
}

func buildPrefix(prefix string) error {
	cmd := func(name string, args ...string) *exec.Cmd {
		c := exec.Command(name, args...)
		c.Env = wineEnv(prefix)
		return c
	}
	if err := run(cmd("wineboot", "-i")); err != nil {
		return err
	}
	if err := run(cmd("wineserver", "-w")); err != nil {
		return err
	}
	win := filepath.Join(prefix, "drive_c", "windows")
	copies := map[string]string{
		"bcryptprimitives64.dll": filepath.Join(win, "system32", "bcryptprimitives.dll"),
		"bcryptprimitives32.dll": filepath.Join(win, "syswow64", "bcryptprimitives.dll"),
	}
	lmx := linuxPathIn(prefix, lmxDir)
	for _, f := range []string{"LmxProxy.dll", "MxAccess32.tlb", "lmxchild.exe"} {
		copies[f] = filepath.Join(lmx, f)
	}
	if err := os.MkdirAll(lmx, 0o755); err != nil {
		return err
	}
	for src, dst := range copies {
		if err := copyFile(filepath.Join(suite.bin, src), dst); err != nil {
			return err
		}
	}
	if err := run(cmd("wine", `C:\windows\syswow64\regsvr32.exe`, "/s", lmxDir+`\LmxProxy.dll`)); err != nil {
		return err
	}
	if err := run(cmd("wineserver", "-w")); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(prefix, ".mxgateway-ready"), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644)
}

// linuxPathIn maps a C: path of prefix to its Linux path.
func linuxPathIn(prefix, winPath string) string {
	rest := strings.TrimPrefix(winPath, `C:\`)
	return filepath.Join(prefix, "drive_c", filepath.FromSlash(strings.ReplaceAll(rest, `\`, "/")))
}

// cleanPrefixTemp removes the gateway run directories earlier runs left in
// the prefix's temp directories (see removeRunDirs).
func cleanPrefixTemp() error {
	dirs, _ := filepath.Glob(filepath.Join(suite.prefix, "drive_c", "users", "*", "Temp", "mxgateway"))
	for _, d := range dirs {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// usersLock is the file runs hold a shared lock on while they use a prefix.
func usersLock(prefix string) (*os.File, error) {
	return os.OpenFile(prefix+".users", os.O_CREATE|os.O_RDWR, 0o644)
}

// usePrefix takes the prefix's users lock shared: several runs (other
// clones, the coordinator's) may share one prefix and its wineserver.
func usePrefix(prefix string) (*os.File, error) {
	f, err := usersLock(prefix)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// releasePrefix drops this run's use of the prefix. The last run to leave
// (it gets the lock exclusively) stops the persistent wineserver, which
// ends every process of the prefix with it; an earlier one leaves them to
// the runs still using it.
func releasePrefix() {
	f := suite.users
	if f == nil {
		return
	}
	defer f.Close()
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		fmt.Fprintf(os.Stderr, "wine: another run still uses %s; its wineserver stays for it\n", suite.prefix)
		return
	}
	_ = wineCmd("wineserver", "-k").Run()
	waitWineserverGone()
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}

// removeUnusedPrefix removes a cached prefix of another key unless a run
// uses it.
func removeUnusedPrefix(prefix string) {
	f, err := usersLock(strings.TrimSuffix(prefix, ".tmp"))
	if err != nil {
		return
	}
	defer f.Close()
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		return
	}
	os.RemoveAll(prefix)
	os.Remove(f.Name())
}

// waitWineserverGone waits (bounded) until no process of the suite's
// prefix is left.
func waitWineserverGone() {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if len(prefixProcesses()) == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Fprintf(os.Stderr, "wine: processes of %s still running: %v\n", suite.prefix, prefixProcesses())
}

// prefixProcesses lists the pids of processes running in the suite's
// prefix (their environment names it).
func prefixProcesses() []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	want := []byte("WINEPREFIX=" + suite.prefix + "\x00")
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		if bytes.Contains(env, want) {
			pids = append(pids, pid)
		}
	}
	return pids
}
