"""`make install` gives a user what they need to build against Gust:
headers, libgust.a and libgust.so, a gust.pc that pkg-config reads and a
CMake package for find_package(gust).

The test installs the build tree given by GUST_BUILD_DIR into a temporary
prefix, then compiles and runs small programs the way a user would, with
the compile line of the README (`cc app.c $(pkg-config --cflags --libs
gust)`) and with CMake's find_package, against both libraries: one with
the loop, one that renders a template with a Jansson context (the public
headers need Jansson, so the link line must bring it).
"""
import os
import subprocess
import textwrap

import pytest

BUILD_DIR = os.environ.get("GUST_BUILD_DIR")

PROGRAM = textwrap.dedent(r"""
    #include <gust/gust.h>
    #include <stdio.h>

    static void on_timeout(gust_loop *loop, void *data)
    {
        *(int *)data = 1;
        gust_loop_stop(loop);
    }

    int main(void)
    {
        int fired = 0;
        gust_loop *loop = gust_loop_new();
        if (!loop)
            return 1;
        gust_loop_call_later(loop, 0.01, on_timeout, &fired);
        gust_loop_start(loop);
        printf("fired=%d backend=%s %s\n", fired, gust_loop_backend(loop),
               gust_strerror(GUST_ESTREAMCLOSED));
        return gust_loop_free(loop) == 0 && fired ? 0 : 1;
    }
""")


# Calls Jansson itself (json_pack, json_decref), as any user of render or
# write_json does: without Jansson on the link line this fails with "DSO
# missing from command line".
TEMPLATE_PROGRAM = textwrap.dedent(r"""
    #include <gust/template.h>
    #include <stdio.h>
    #include <stdlib.h>

    int main(void)
    {
        gust_template *t = gust_template_new_from_string(
            "<h1>{{ title }}</h1>{% for x in xs %}[{{ x }}]{% end %}", "t.html");
        json_t *ctx = json_pack("{s:s, s:[i,f]}", "title", "a<b", "xs", 1, 0.5);
        char *out;
        size_t len;
        int rc = gust_template_render(t, ctx, &out, &len);
        if (rc < 0)
            return 1;
        printf("%s\n", out);
        free(out);
        json_decref(ctx);
        gust_template_free(t);
        return 0;
    }
""")

PROGRAMS = {"loop": (PROGRAM, "fired=1"),
            "template": (TEMPLATE_PROGRAM, "<h1>a&lt;b</h1>[1][0.5]")}


def sanitizer_flags(libdir):
    """The installed tree may have been built with the sanitizers."""
    sanitized = subprocess.run(["nm", "-A", *map(str, libdir.glob("libgust.a"))],
                               capture_output=True, text=True).stdout
    return ["-fsanitize=address,undefined"] if "__asan_" in sanitized else []


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    if not BUILD_DIR:
        pytest.fail("GUST_BUILD_DIR is not set (run through ctest)")
    root = tmp_path_factory.mktemp("prefix")
    subprocess.run(["cmake", "--install", BUILD_DIR, "--prefix", str(root)],
                   check=True, capture_output=True, text=True)
    return root


def pkg_config(prefix, *args):
    libdir = next(p for p in prefix.glob("lib*") if (p / "pkgconfig").is_dir())
    env = dict(os.environ, PKG_CONFIG_PATH=str(libdir / "pkgconfig"))
    out = subprocess.run(["pkg-config", *args, "gust"], check=True,
                         capture_output=True, text=True, env=env)
    return out.stdout.split(), libdir


def test_installs_headers_libraries_and_pc(prefix):
    assert (prefix / "include" / "gust" / "gust.h").is_file()
    assert (prefix / "include" / "gust" / "loop.h").is_file()
    libs = {p.name for p in prefix.rglob("libgust*")}
    assert "libgust.a" in libs
    assert any(n.startswith("libgust.so") for n in libs)
    flags, _ = pkg_config(prefix, "--modversion")
    assert flags and flags[0].count(".") == 2


def test_pc_requires_what_the_headers_include(prefix):
    """Every library a public header includes is a public requirement."""
    headers = (prefix / "include" / "gust").glob("*.h")
    included = {line.split("<")[1].split(">")[0]
                for h in headers for line in h.read_text().splitlines()
                if line.startswith("#include <")}
    external = {i for i in included if "/" not in i or i.startswith("openssl/")}
    external -= {"errno.h", "stdarg.h", "stdbool.h", "stddef.h", "stdint.h",
                 "stdio.h", "string.h", "time.h"}
    assert external == {"jansson.h"}, external
    requires, _ = pkg_config(prefix, "--print-requires")
    assert requires == ["jansson"]
    libs, _ = pkg_config(prefix, "--libs")
    assert "-ljansson" in libs


@pytest.mark.parametrize("program", sorted(PROGRAMS))
@pytest.mark.parametrize("linkage", ["shared", "static"])
def test_user_program_builds_with_pkg_config(prefix, tmp_path, linkage,
                                             program):
    text, expect = PROGRAMS[program]
    src = tmp_path / "user.c"
    src.write_text(text)
    args = ["--cflags", "--libs"] + (["--static"] if linkage == "static" else [])
    flags, libdir = pkg_config(prefix, *args)
    exe = tmp_path / "user"
    cmd = ["cc", "-std=c17", "-Wall", "-Werror", str(src), "-o", str(exe)]
    if linkage == "static":
        cmd += ["-Wl,-Bstatic", "-lgust", "-Wl,-Bdynamic"] + \
               [f for f in flags if f != "-lgust"]
    else:
        cmd += flags
    cmd += sanitizer_flags(libdir)
    # --as-needed, as several distributions' toolchains default to: a
    # library the program calls directly must be named on the line.
    cmd += ["-Wl,--as-needed"]
    build = subprocess.run(cmd, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    env = dict(os.environ, LD_LIBRARY_PATH=str(libdir))
    run = subprocess.run([str(exe)], capture_output=True, text=True, env=env,
                         timeout=30)
    assert run.returncode == 0, run.stderr
    assert expect in run.stdout
    if program == "loop":
        assert "stream is closed" in run.stdout


CMAKE_PROJECT = textwrap.dedent("""
    cmake_minimum_required(VERSION 3.18)
    project(user C)
    find_package(gust 0.1 REQUIRED)
    add_executable(user user.c)
    target_link_libraries(user PRIVATE {target})
""")


@pytest.mark.parametrize("program", sorted(PROGRAMS))
@pytest.mark.parametrize("target", ["gust::gust", "gust::gust_static"])
def test_user_program_builds_with_find_package(prefix, tmp_path, target,
                                               program):
    text, expect = PROGRAMS[program]
    (tmp_path / "user.c").write_text(text)
    (tmp_path / "CMakeLists.txt").write_text(CMAKE_PROJECT.format(target=target))
    _, libdir = pkg_config(prefix, "--libs")
    san = " ".join(sanitizer_flags(libdir))
    build = tmp_path / "build"
    conf = subprocess.run(
        ["cmake", "-S", str(tmp_path), "-B", str(build),
         f"-DCMAKE_PREFIX_PATH={prefix}", f"-DCMAKE_C_FLAGS={san}",
         f"-DCMAKE_EXE_LINKER_FLAGS={san} -Wl,--as-needed"],
        capture_output=True, text=True)
    assert conf.returncode == 0, conf.stdout + conf.stderr
    made = subprocess.run(["cmake", "--build", str(build)],
                          capture_output=True, text=True)
    assert made.returncode == 0, made.stdout + made.stderr
    run = subprocess.run([str(build / "user")], capture_output=True, text=True,
                         timeout=30)
    assert run.returncode == 0, run.stderr
    assert expect in run.stdout
