from count_skel import CountSkeleton

with CountSkeleton().load() as skel:
    for h in skel.maps.hits.reader().events(timeout=0.1):
        print(h.pidd)
EOF'''
assert old_l in s; s=s.replace(old_l,new_l)
old_r='''env -u PYTHONPATH "$venv/bin/python" run_count.py
'''
new_r='''env -u PYTHONPATH "$venv/bin/python" run_count.py
# The user's loader type-checks with the generated skeleton (typed map items and events); a misspelt member does not.
"$venv/bin/pip" install -q mypy
env -u PYTHONPATH "$venv/bin/mypy" --strict --no-incremental run_count.py count_skel.py \\
    || fail "mypy --strict rejects the user's loader"
if out=$(env -u PYTHONPATH "$venv/bin/mypy" --strict --no-incremental misspelt.py count_skel.py); then
    fail "mypy --strict accepted a misspelt event member: $out"
fi
grep -q '"Hit" has no attribute "pidd"' <<<"$out" || fail "mypy did not name the misspelt member: $out"
echo "wheel ok: mypy --strict checks the user's loader against the generated skeleton"
'''
assert old_r in s; s=s.replace(old_r,new_r)
open(p,'w').write(s)
