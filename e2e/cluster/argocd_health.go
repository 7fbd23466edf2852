package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// runArgocdHealth runs an Argo CD resource health script in gopher-lua, the Lua 5.1 VM Argo CD embeds,
// opened as Argo CD's util/lua/lua.go opens it for a resource.customizations health.lua without
// useOpenLibs: the package, base and table libraries and its safe os (time and date only), obj set
// to the live object, one second to run. It reads a JSON array of objects on stdin and prints a JSON
// array with, for each, {"status", "message"} or {"error"}:
//
//	gemma-plane argocd-health health.lua < objects.json
//
// An invalid status reads as Unknown, with Argo CD's words, as ExecuteHealthLua does.
func runArgocdHealth(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: gemma-plane argocd-health SCRIPT < objects.json")
		return 2
	}
	script, err := os.ReadFile(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "argocd-health: %v\n", err)
		return 1
	}
	input, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintf(os.Stderr, "argocd-health: %v\n", err)
		return 1
	}
	var objects []any
	if err := json.Unmarshal(input, &objects); err != nil {
		fmt.Fprintf(os.Stderr, "argocd-health: stdin: %v\n", err)
		return 1
	}
	results := make([]map[string]string, 0, len(objects))
	for _, obj := range objects {
		status, message, err := argocdHealth(string(script), obj)
		if err != nil {
			results = append(results, map[string]string{"error": err.Error()})
			continue
		}
		results = append(results, map[string]string{"status": status, "message": message})
	}
	out, _ := json.Marshal(results)
	fmt.Println(string(out))
	return 0
}

// Argo CD's health codes (gitops-engine pkg/health); any other status is replaced by Unknown.
var argocdHealthCodes = map[string]bool{
	"Unknown": true, "Progressing": true, "Suspended": true, "Healthy": true, "Degraded": true, "Missing": true,
}

func argocdHealth(script string, obj any) (string, string, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), Protect: true}, lua.LString(lib.name)); err != nil {
			return "", "", err
		}
	}
	openArgocdSafeOs(l)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", luaValue(l, obj))
	if err := l.DoString(script); err != nil {
		return "", "", err
	}
	result, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		return "", "", fmt.Errorf("expect table output from Lua script, not %s", l.Get(-1).Type())
	}
	status, message := lua.LVAsString(result.RawGetString("status")), lua.LVAsString(result.RawGetString("message"))
	if !argocdHealthCodes[status] {
		return "Unknown", "Lua returned an invalid health status", nil
	}
	return status, message, nil
}

// openArgocdSafeOs gives the script what Argo CD's OpenSafeOs does: os.time and os.date, which Argo CD copied
// from gopher-lua, registered into the module named lua.TabLibName (so into `table`, not a global `os`), and
// the same two as the preloaded module "os" for `require("os")`.
func openArgocdSafeOs(l *lua.LState) {
	l.Push(l.NewFunction(lua.OpenOs))
	l.Push(lua.LString(lua.OsLibName))
	l.Call(1, 1)
	full := l.Get(-1).(*lua.LTable)
	l.Pop(1)
	l.SetGlobal(lua.OsLibName, lua.LNil)
	safe := map[string]lua.LValue{"time": full.RawGetString("time"), "date": full.RawGetString("date")}
	table := l.GetGlobal(lua.TabLibName).(*lua.LTable)
	for name, fn := range safe {
		table.RawSetString(name, fn)
	}
	l.PreloadModule(lua.OsLibName, func(l *lua.LState) int {
		mod := l.NewTable()
		for name, fn := range safe {
			mod.RawSetString(name, fn)
		}
		l.Push(mod)
		return 1
	})
	// OpenOs also recorded the full library as loaded, which would make require("os") skip the preload.
	l.SetField(l.GetField(l.Get(lua.RegistryIndex), "_LOADED"), lua.OsLibName, lua.LNil)
}

// luaValue converts decoded JSON as Argo CD's decodeValue converts the live object: numbers to LNumber,
// arrays to sequences, objects to tables, null to nil.
func luaValue(l *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case []any:
		arr := l.CreateTable(len(v), 0)
		for _, item := range v {
			arr.Append(luaValue(l, item))
		}
		return arr
	case map[string]any:
		tbl := l.CreateTable(0, len(v))
		for key, item := range v {
			tbl.RawSetH(lua.LString(key), luaValue(l, item))
		}
		return tbl
	}
	return lua.LNil
}
