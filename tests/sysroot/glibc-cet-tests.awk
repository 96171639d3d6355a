# Lists glibc's CET and shadow-stack tests as SUBDIR/NAME, from the Makefiles that define them
# (sysdeps/x86/Makefile, sysdeps/x86_64/Makefile, sysdeps/unix/sysv/linux/x86_64/Makefile): the
# names matching tst-cet-*, tst-shstk-*, tst-setjmp-cet added to tests, tests-static,
# tests-internal, tests-special (as $(objpfx)NAME.out) or test-xfail lists inside an
# `ifeq ($(subdir),SUBDIR)` block. Continuation lines are joined first.
function subdir(   i) {
    for (i = depth; i > 0; i--)
        if (stack[i] != "-")
            return stack[i]
    return ""
}
{
    line = $0
    while (line ~ /\\$/ && (getline nxt) > 0)
        line = substr(line, 1, length(line) - 1) " " nxt
    if (match(line, /^ifeq \(\$\(subdir\),[a-z]+\)/)) {
        s = substr(line, RSTART, RLENGTH)
        sub(/^ifeq \(\$\(subdir\),/, "", s)
        sub(/\)$/, "", s)
        stack[++depth] = s
        next
    }
    if (line ~ /^if(eq|neq|def|ndef)[ (]/) { stack[++depth] = "-"; next }
    if (line ~ /^endif/) { if (depth > 0) depth--; next }
    if (line !~ /^(tests|tests-static|tests-internal|tests-special|tests-container)[ \t]*\+?=/)
        next
    d = subdir()
    if (d == "")
        next
    n = split(line, w, /[ \t]+/)
    for (i = 2; i <= n; i++) {
        t = w[i]
        sub(/^\$\(objpfx\)/, "", t)
        sub(/\.out$/, "", t)
        if (t ~ /^tst-(cet-|shstk-|setjmp-cet)/ && !seen[d "/" t]++)
            print d "/" t
    }
}
