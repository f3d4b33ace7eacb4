#!/usr/bin/env zsh
# ci/zsh-complete.zsh: what zsh's completion system offers for command lines.
#
#   zsh -f ci/zsh-complete.zsh OUTDIR FPATH_DIR LINE...
#
# Starts one interactive `zsh -f` in a pseudo-terminal (zpty), runs compinit (with
# FPATH_DIR, unless empty, in front of $fpath), then for each LINE types it and a Tab,
# and writes to OUTDIR/N (N = 1, 2, ...) every candidate the completion functions added
# for it, one a line. A small compadd wrapper records them, so nothing depends on how
# the terminal draws the list. Exits 1 if a completion does not finish within 10 s.
emulate -L zsh
zmodload zsh/zpty || { print -u2 "zsh-complete: no zsh/zpty module"; exit 2 }
outdir=$1 dir=$2
shift 2

zpty w zsh -f -i
zpty -w w "PS1='' PS2='' RPS1=''; bindkey -e; LISTMAX=100000; unsetopt beep"
[[ -n $dir ]] && zpty -w w "fpath=(${(q)dir} \$fpath)"
zpty -w w 'autoload -Uz compinit && compinit -u -D'
zpty -w w "__out=${(q)outdir} __n=1"
# Record the words a call would add; calls that only ask (-O, -A, -D) are passed on.
zpty -w w 'compadd() {
  if (( ${@[(I)-[OAD]*]} )); then builtin compadd "$@"; return; fi
  local -a __w; builtin compadd -O __w "$@"
  (( $#__w )) && print -rl -- $__w >> $__out/$__n
  builtin compadd "$@"
}'
# Ctrl-T (no prefix of other keys, so it acts at once), typed after the Tab, marks
# the end of this line's completion.
zpty -w w 'zle -N __done; __done() { print -r -- __DONE__ >> $__out/$__n; (( __n++ )); }; bindkey "^T" __done'

# Wait until the shell has run all of the above: keys typed while it is still busy
# may be lost.
integer n=0 i
zpty -w w 'print -r -- ready >| $__out/ready'
for (( i = 0; i < 400; i++ )); do
  [[ -s $outdir/ready ]] && break
  sleep 0.025
done
[[ -s $outdir/ready ]] || { print -u2 "zsh-complete: zsh did not start"; zpty -d w; exit 1 }

for line; do
  (( n++ ))
  : >| $outdir/$n
  # Type the line, Tab, the marker; then Ctrl-U clears the line for the next one.
  zpty -w -n w "$line"$'\t\x14\x15'
  for (( i = 0; i < 400; i++ )); do
    grep -q '^__DONE__$' $outdir/$n 2>/dev/null && break
    sleep 0.025
  done
  grep -q '^__DONE__$' $outdir/$n || { print -u2 "zsh-complete: no answer for '$line'"; zpty -d w; exit 1 }
  sed -i '/^__DONE__$/d' $outdir/$n
done
zpty -d w
