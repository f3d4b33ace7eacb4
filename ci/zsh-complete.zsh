#!/usr/bin/env zsh
# ci/zsh-complete.zsh: what zsh's completion system offers for a command line.
#
#   zsh -f ci/zsh-complete.zsh OUTFILE 'withlock --' [FPATH_DIR]
#
# Starts an interactive `zsh -f` in a pseudo-terminal (zpty), runs compinit (with
# FPATH_DIR in front of $fpath, if given), types the line and a Tab, and writes to
# OUTFILE every candidate the completion functions added, one a line (duplicates
# and all). A tiny compadd wrapper records them: nothing depends on how the terminal
# draws the list. Exits 1 if the completion did not finish within 10 seconds.
emulate -L zsh
zmodload zsh/zpty || { print -u2 "zsh-complete: no zsh/zpty module"; exit 2 }
out=$1 line=$2 dir=${3-}
: >| $out

zpty w zsh -f -i
zpty -w w "PS1='' PS2='' RPS1=''; bindkey -e; LISTMAX=100000; unsetopt beep"
[[ -n $dir ]] && zpty -w w "fpath=(${(q)dir} \$fpath)"
zpty -w w 'autoload -Uz compinit && compinit -u -D'
# Record the words a call would add; calls that only ask (-O, -A, -D) are passed on.
zpty -w w 'compadd() {
  if (( ${@[(I)-[OAD]*]} )); then builtin compadd "$@"; return; fi
  local -a __w; builtin compadd -O __w "$@"
  print -rl -- $__w >> '${(q)out}'
  builtin compadd "$@"
}'
# Ctrl-X, typed after the Tab, writes the end marker once the completion is done.
zpty -w w 'zle -N __done; __done() { print -r -- __DONE__ >> '${(q)out}'; }; bindkey "^X" __done'
zpty -w -n w "$line"$'\t\x18'
integer i
for (( i = 0; i < 200; i++ )); do
  grep -q '^__DONE__$' $out 2>/dev/null && break
  sleep 0.05
done
zpty -d w
grep -q '^__DONE__$' $out || { print -u2 "zsh-complete: no answer for '$line'"; exit 1 }
sed -i '/^__DONE__$/d' $out
