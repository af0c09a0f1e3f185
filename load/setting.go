package load

import "github.com/loadprof/loadprof/internal/setting"

// SettingError is a setting loadprof's packages cannot use (load, bench,
// payloads, profile, report and sim all return it). Setting is the Go name
// of the setting at fault, package-qualified ("load.Plan.Rate",
// "bench.Config.Timeout"); the message names settings the same way.
type SettingError = setting.Error
