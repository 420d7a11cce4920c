// Command cloak runs a command, above all an AI coding agent, so that it
// never holds a real secret: it gets dummies, and cloak's proxy swaps them
// for the real values only on requests to the hosts each secret is bound to.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/cloak-dev/cloak/launcher"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// run is main without os.Exit, so tests can drive the CLI in-process.
func run(args []string, stdout, stderr io.Writer) int {
	code := 0
	app := newApp(stdout, stderr, &code)
	if err := app.Run(args); err != nil {
		return fail(stderr, err)
	}
	return code
}

// fail is the one place cloak reports its own errors: "cloak: error: ..."
// with the exit status the error carries.
func fail(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "cloak: error: %v\n", err)
	var ee *launcher.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.Code
	case errors.Is(err, launcher.ErrUsage), errors.As(err, new(usageErr)):
		fmt.Fprintln(stderr, "cloak: hint: see 'cloak COMMAND --help'")
		return 2
	}
	return 1
}

// usageErr is a flag or argument error from the command line.
type usageErr struct{ error }

func newApp(stdout, stderr io.Writer, code *int) *cli.App {
	return &cli.App{
		Name:      "cloak",
		Usage:     "run an AI coding agent without handing it your real secrets",
		UsageText: "cloak run [flags] -- COMMAND [ARGS...]\n   cloak policy show|explain\n   cloak audit [--follow]\n   cloak shell-init bash|zsh|fish\n   cloak doctor\n   cloak version",
		Description: "cloak reads your secrets (.env, or --from-env), gives the command dummy values\n" +
			"in their place, and runs it behind a proxy inside cloak that swaps each dummy\n" +
			"for the real value only on HTTPS requests to the hosts that secret is bound to.\n\n" +
			"Example:  cloak run -- claude",
		Writer:          stdout,
		ErrWriter:       stderr,
		HideHelpCommand: true,
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageErr{err}
		},
		Commands: []*cli.Command{
			runCommand(code),
			policyCommand(),
			auditCommand(),
			shellInitCommand(),
			doctorCommand(code),
			{
				Name:  "version",
				Usage: "print cloak's version",
				Action: func(c *cli.Context) error {
					fmt.Fprintln(c.App.Writer, "cloak", versionString())
					return nil
				},
			},
		},
	}
}

// inputFlags say where secrets and policy come from: the same for a run
// and for `cloak policy`, so that policy show and explain describe the run.
func inputFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "env-file", Usage: "read secrets from `PATH` (repeatable; later files win)", EnvVars: []string{"CLOAK_ENV_FILE"}},
		&cli.StringSliceFlag{Name: "from-env", Usage: "take secret `NAME` from cloak's own environment (repeatable; for CI)", EnvVars: []string{"CLOAK_FROM_ENV"}},
		&cli.StringFlag{Name: "policy", Usage: "read the policy from `FILE` (default: policy.toml in cloak's config dir)", EnvVars: []string{"CLOAK_POLICY"}},
		&cli.StringSliceFlag{Name: "bind", Usage: "let secret NAME go to these hosts: `NAME=HOST[,HOST...]` (repeatable; *.example.com allowed)"},
		&cli.BoolFlag{Name: "inspect-all", Usage: "decrypt and log every HTTPS host, not only bound ones"},
	}
}

func inputOptions(c *cli.Context) launcher.Options {
	return launcher.Options{
		EnvFiles:   c.StringSlice("env-file"),
		FromEnv:    c.StringSlice("from-env"),
		Policy:     c.String("policy"),
		Binds:      c.StringSlice("bind"),
		InspectAll: c.Bool("inspect-all"),
		Stdout:     c.App.Writer,
		Stderr:     c.App.ErrWriter,
	}
}

func runCommand(code *int) *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run COMMAND with dummy secrets behind cloak's proxy",
		UsageText: "cloak run [flags] -- COMMAND [ARGS...]",
		Description: "Secrets come from --env-file (default: secrets.env in cloak's config dir and\n" +
			".env here, when they exist) and --from-env. Built-in presets bind well-known\n" +
			"names (ANTHROPIC_API_KEY, OPENAI_API_KEY, GITHUB_TOKEN, ...); the policy file\n" +
			"and --bind add or replace bindings, and .cloak.toml here may only narrow them.\n" +
			"See 'cloak policy show'. cloak exits with the command's status.",
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageErr{err}
		},
		Flags: append(inputFlags(),
			&cli.StringSliceFlag{Name: "resolve", Usage: "connect to ADDR for HOST:PORT, like curl: `HOST:PORT:ADDR[:PORT2]` (repeatable)"},
			&cli.StringSliceFlag{Name: "upstream-ca", Usage: "also trust the roots in PEM `FILE` for upstream servers (repeatable)", EnvVars: []string{"CLOAK_UPSTREAM_CA"}},
			&cli.StringFlag{Name: "audit-log", Usage: "append the audit log to `PATH` (default: audit.log in cloak's state dir)", EnvVars: []string{"CLOAK_AUDIT_LOG"}},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "say what cloak set up before the command starts, and a full summary after"},
		),
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usageErr{errors.New("no command given (cloak run [flags] -- COMMAND [ARGS...])")}
			}
			o := inputOptions(c)
			o.Command = c.Args().Slice()
			o.Resolve = c.StringSlice("resolve")
			o.UpstreamCA = c.StringSlice("upstream-ca")
			o.AuditLog = c.String("audit-log")
			o.Verbose = c.Bool("verbose")
			status, err := launcher.Run(o)
			*code = status
			return err
		},
	}
}

func policyCommand() *cli.Command {
	return &cli.Command{
		Name:  "policy",
		Usage: "show the policy a run here would use, or explain it for one request",
		Subcommands: []*cli.Command{
			{
				Name:         "show",
				Usage:        "print the effective policy, with where each line came from",
				UsageText:    "cloak policy show [flags]",
				Flags:        inputFlags(),
				OnUsageError: func(_ *cli.Context, err error, _ bool) error { return usageErr{err} },
				Action: func(c *cli.Context) error {
					if c.NArg() > 0 {
						return usageErr{fmt.Errorf("unexpected argument %q", c.Args().First())}
					}
					return launcher.ShowPolicy(inputOptions(c))
				},
			},
			{
				Name:         "explain",
				Usage:        "say what cloak would do with a request: which secrets it injects where, or why it refuses",
				UsageText:    "cloak policy explain [flags] METHOD URL\n   e.g. cloak policy explain POST https://api.anthropic.com/v1/messages",
				Flags:        inputFlags(),
				OnUsageError: func(_ *cli.Context, err error, _ bool) error { return usageErr{err} },
				Action: func(c *cli.Context) error {
					if c.NArg() != 2 {
						return usageErr{errors.New("want METHOD URL (e.g. cloak policy explain GET https://api.example.com/)")}
					}
					return launcher.ExplainPolicy(inputOptions(c), c.Args().Get(0), c.Args().Get(1))
				},
			},
		},
	}
}

func auditCommand() *cli.Command {
	return &cli.Command{
		Name:      "audit",
		Usage:     "show the audit log: every request, refusal and alert",
		UsageText: "cloak audit [--follow] [--alerts] [--session ID] [--json]",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep showing lines as sessions add them"},
			&cli.BoolFlag{Name: "alerts", Usage: "only alerts: dummies sent where they may not go, domain fronting"},
			&cli.StringFlag{Name: "session", Usage: "only the session `ID` (a prefix will do)"},
			&cli.BoolFlag{Name: "json", Usage: "print the matching lines as logged, one JSON object each"},
			&cli.StringFlag{Name: "audit-log", Usage: "read the log at `PATH` (default: audit.log in cloak's state dir)", EnvVars: []string{"CLOAK_AUDIT_LOG"}},
		},
		OnUsageError: func(_ *cli.Context, err error, _ bool) error { return usageErr{err} },
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageErr{fmt.Errorf("unexpected argument %q", c.Args().First())}
			}
			return launcher.Audit(launcher.AuditOptions{
				Path:    c.String("audit-log"),
				Follow:  c.Bool("follow"),
				Alerts:  c.Bool("alerts"),
				Session: c.String("session"),
				JSON:    c.Bool("json"),
				Color:   launcher.UseColor(c.App.Writer),
				Out:     c.App.Writer,
				Context: c.Context,
			})
		},
	}
}

func shellInitCommand() *cli.Command {
	return &cli.Command{
		Name:      "shell-init",
		Usage:     "print a shell function that runs claude under cloak",
		UsageText: `eval "$(cloak shell-init bash)"   (or zsh; fish: cloak shell-init fish | source)`,
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageErr{fmt.Errorf("shell-init takes one shell: %s", strings.Join(launcher.Shells, ", "))}
			}
			text, err := launcher.ShellInit(c.Args().First())
			if err != nil {
				return err
			}
			fmt.Fprint(c.App.Writer, text)
			return nil
		},
	}
}

func doctorCommand(code *int) *cli.Command {
	return &cli.Command{
		Name:  "doctor",
		Usage: "check claude, where secrets come from, Claude settings, and which clients trust cloak's proxy",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "env-file", Usage: "check secrets file `PATH` as cloak run would read it (repeatable)", EnvVars: []string{"CLOAK_ENV_FILE"}},
			&cli.StringSliceFlag{Name: "from-env", Usage: "as for cloak run: `NAME` comes from the environment (repeatable)", EnvVars: []string{"CLOAK_FROM_ENV"}},
			&cli.BoolFlag{Name: "no-self-test", Usage: "skip the trust self-test"},
		},
		Action: func(c *cli.Context) error {
			problems, err := launcher.Doctor(launcher.DoctorOptions{
				EnvFiles:     c.StringSlice("env-file"),
				FromEnv:      c.StringSlice("from-env"),
				Stdout:       c.App.Writer,
				SkipSelfTest: c.Bool("no-self-test"),
			})
			if problems > 0 {
				*code = 1
			}
			return err
		},
	}
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
