#!/bin/sh
# Runs INSIDE the GIMP 3 root: the GUI GIMP on a private Xvfb display, calling the plug-in
# interactively (gimp_batch.py, OLDPHOTO_CASES=ui) while xdotool presses Return (OK) in its dialog.
# Why: GIMP saves "last values" only after an interactive run, and only a real dialog shows that the
# plug-in's dialog opens, fills from the last values and runs. Usage: gimp_ui.sh /tmp/<work dir>
T=$1
rm -f "$T/display"   # a number left from an earlier run would be read before Xvfb truncates the file
Xvfb -displayfd 5 -screen 0 1280x1024x24 -nolisten tcp 5>"$T/display" 2>"$T/xvfb.log" &
XPID=$!
i=0
while ! grep -qx '[0-9][0-9]*' "$T/display" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
DISPLAY=:$(cat "$T/display")
export DISPLAY
(
    i=0
    while [ $i -lt 400 ]; do
        wid=$(xdotool search --name "Restore Old Photo" 2>/dev/null | head -1)
        if [ -n "$wid" ]; then
            echo "dialog window $wid"
            sleep 1
            xdotool windowfocus --sync "$wid" && xdotool key --clearmodifiers Return && echo "pressed OK"
            break
        fi
        sleep 0.5
        i=$((i + 1))
    done
) >"$T/xdotool.log" 2>&1 &
OLDPHOTO_CASES=ui gimp-3.0 -d -f --no-splash --batch-interpreter=python-fu-eval \
    -b "exec(open('$T/gimp_batch.py').read())" --quit
rc=$?
kill $XPID 2>/dev/null
exit $rc
