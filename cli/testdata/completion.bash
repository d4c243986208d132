# weft completion for bash; load with: source <(weft completion bash)
_weft_proxies() {
  "${COMP_WORDS[0]}" proxy-status -o name 2>/dev/null
}

_weft_completions() {
  local cur prev word path="" positional=0 skip=0 i words=""
  cur="${COMP_WORDS[COMP_CWORD]}"
  prev="${COMP_WORDS[COMP_CWORD-1]}"
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="${COMP_WORDS[i]}"
    if ((skip)); then skip=0; continue; fi
    case "$word" in
      --image|--kubeconfig|--output|-o) skip=1; continue ;;
      -*) continue ;;
    esac
    case "$path/$word" in
      "/manifests"|"/dev"|"/dev/shell"|"/proxy-config"|"/proxy-status") path="$path/$word"; positional=0 ;;
      *) positional=$((positional + 1)) ;;
    esac
  done
  case "$path $prev" in
    "/proxy-config -o"|"/proxy-config --output") COMPREPLY=($(compgen -W "table json" -- "$cur")); return ;;
  esac
  case "$path" in
    "")
      words="manifests dev proxy-config proxy-status"
      [[ $cur == -* ]] && words="--help"
      ;;
    "/manifests")
      [[ $cur == -* ]] && words="--image --help"
      ;;
    "/dev")
      words="shell"
      [[ $cur == -* ]] && words="--help"
      ;;
    "/dev/shell")
      [[ $cur == -* ]] && words="--help"
      ;;
    "/proxy-config")
      case $positional in
        0) words="clusters routes" ;;
        1) words="$(_weft_proxies)" ;;
      esac
      [[ $cur == -* ]] && words="--output --kubeconfig --help"
      ;;
    "/proxy-status")
      case $positional in
        0) words="$(_weft_proxies)" ;;
      esac
      [[ $cur == -* ]] && words="--kubeconfig --help"
      ;;
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F _weft_completions weft
complete -F _weft_completions kubectl-weft
