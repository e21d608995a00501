"""`make install` gives a user what they need to build against Gust:
headers, libgust.a and libgust.so, and a gust.pc that pkg-config reads.

The test installs the build tree given by GUST_BUILD_DIR into a temporary
prefix, then compiles and runs a small program the way a user would, with
`pkg-config --cflags --libs gust`, against both libraries.
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


@pytest.mark.parametrize("linkage", ["shared", "static"])
def test_user_program_builds_with_pkg_config(prefix, tmp_path, linkage):
    src = tmp_path / "user.c"
    src.write_text(PROGRAM)
    args = ["--cflags", "--libs"] + (["--static"] if linkage == "static" else [])
    flags, libdir = pkg_config(prefix, *args)
    exe = tmp_path / "user"
    cmd = ["cc", "-std=c17", "-Wall", "-Werror", str(src), "-o", str(exe)]
    if linkage == "static":
        cmd += ["-Wl,-Bstatic", "-lgust", "-Wl,-Bdynamic"] + \
               [f for f in flags if f != "-lgust"]
    else:
        cmd += flags
    # The installed tree may have been built with the sanitizers.
    sanitized = subprocess.run(["nm", "-A", *map(str, libdir.glob("libgust.a"))],
                               capture_output=True, text=True).stdout
    if "__asan_" in sanitized:
        cmd += ["-fsanitize=address,undefined"]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    env = dict(os.environ, LD_LIBRARY_PATH=str(libdir))
    run = subprocess.run([str(exe)], capture_output=True, text=True, env=env,
                         timeout=30)
    assert run.returncode == 0, run.stderr
    assert "fired=1" in run.stdout
    assert "stream is closed" in run.stdout
